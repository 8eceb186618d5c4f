#!/usr/bin/env bash
# Regenerate the package locks: for every input NAME.in (requirements/, and the upgrade test's
# molecule/resources/lock-upgrade/) and every Python minor the cluster nodes run, NAME-py3.X.txt
# holds every package the input pulls in, each pinned with `==`. The roles install exactly the
# lock of the node's Python minor (a minor without one is refused before any change).
#
# Usage: scripts/lock.sh [--upgrade]
#   without --upgrade, versions already in a lock are kept while they still fit the input
#   (change a pin in an .in file, run it, and only what that pin pulls in moves);
#   with --upgrade, every package moves to its newest version that fits.
#
# Each lock is resolved for Linux on x86_64 and on aarch64 and the two must be identical (one
# file serves both; the script stops if a package ever differs). NAME.in other than cluster.in
# (ssh.in: a tunnel-mode workstation) are resolved with the cluster lock as constraints, so a
# package both hold has the same version on workstations and engines.
# Needs uv (requirements-dev.txt installs it in .venv) and the package index (PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"

# The Python minors of the supported cluster nodes: Debian 12 (3.11) and Debian 13 (3.13).
PYTHONS=(3.11 3.13)
ARCHES=(x86_64 aarch64)
DIRS=(requirements molecule/resources/lock-upgrade)

upgrade=()
case "${1:-}" in
  "") ;;
  --upgrade) upgrade=(--upgrade) ;;
  *) echo "usage: scripts/lock.sh [--upgrade]" >&2; exit 2 ;;
esac
command -v uv >/dev/null || { echo "lock.sh: uv not found; run scripts/setup-dev.sh (it installs .venv)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

compile() { # INPUT OUTPUT PYTHON ARCH [uv options...]
  local input=$1 output=$2 python=$3 arch=$4
  shift 4
  uv pip compile --quiet "${upgrade[@]}" "$@" \
    --python-version "$python" --python-platform "$arch-unknown-linux-gnu" \
    --custom-compile-command "scripts/lock.sh" --output-file "$output" "$input"
}

for dir in "${DIRS[@]}"; do
  inputs=("$dir/cluster.in")
  for input in "$dir"/*.in; do
    [[ $input == "$dir/cluster.in" ]] || inputs+=("$input")
  done
  wanted=()
  for python in "${PYTHONS[@]}"; do
    for input in "${inputs[@]}"; do
      name=$(basename "$input" .in)
      lock="$dir/$name-py$python.txt"
      constraints=()
      [[ $name == cluster ]] || constraints=(--constraint "$dir/cluster-py$python.txt")
      compile "$input" "$lock" "$python" "${ARCHES[0]}" "${constraints[@]}"
      for arch in "${ARCHES[@]:1}"; do
        cp "$lock" "$tmp/other.txt" # the same preferences, so only a real difference shows
        compile "$input" "$tmp/other.txt" "$python" "$arch" "${constraints[@]}"
        if ! diff -u "$lock" "$tmp/other.txt" >"$tmp/diff"; then
          cat "$tmp/diff" >&2
          echo "lock.sh: $lock differs between ${ARCHES[0]} and $arch: one lock per architecture is needed now" >&2
          exit 1
        fi
      done
      wanted+=("$lock")
      echo "$lock: $(grep -c '^[A-Za-z0-9]' "$lock") packages"
    done
  done
  # A lock of a minor no longer listed would still tell the roles that minor is supported.
  for lock in "$dir"/*-py*.txt; do
    [[ -e $lock ]] || continue
    if [[ " ${wanted[*]} " != *" $lock "* ]]; then
      echo "lock.sh: removing $lock (its Python is not in PYTHONS)"
      rm -f "$lock"
    fi
  done
done
