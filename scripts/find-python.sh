#!/usr/bin/env bash
# Print the path of a Python >= 3.12 for the control node (ansible-core 2.20+ needs it):
# the distribution's python3 where it is new enough (Debian 13: 3.13), else a python3.13 or
# python3.12 on PATH that really runs (pyenv's shims answer "command not found" for versions
# not selected), else the newest in pyenv's versions directory. Exit 1, saying what to
# install, when there is none.
set -uo pipefail

works() {  # works PYTHON: it runs and is 3.12 or newer
  "$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1
}

for candidate in python3 python3.13 python3.12; do
  path=$(command -v "$candidate" 2>/dev/null) || continue
  if works "$path"; then
    # A pyenv shim runs only with its version selected: name the real interpreter.
    real=$("$path" -c 'import sys; print(sys.executable)' 2>/dev/null) && echo "$real" && exit 0
  fi
done

# uv's own interpreters (`uv python install 3.13`).
if command -v uv >/dev/null 2>&1; then
  path=$(uv python find '>=3.12' 2>/dev/null) && works "$path" && echo "$path" && exit 0
fi

root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
for path in $(ls -d "$root"/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -rV); do
  if works "$path"; then
    echo "$path"
    exit 0
  fi
done

cat >&2 <<'MSG'
find-python: no Python 3.12 or newer here, and ansible-core 2.20+ needs one on the control node.
Install one: on Debian 13, `apt-get install python3 python3-venv` (3.13); on Debian 12,
`uv python install 3.13` (with internet; pip install uv first) or pyenv, then run this again.
MSG
exit 1
