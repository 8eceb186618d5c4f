#!/usr/bin/env bash
# Prepare this machine (Debian/Ubuntu, as root) to run the tests and the lab:
# podman + runc + debootstrap, a virtual environment .venv with the pinned tools
# (requirements-dev.txt), and the cached Debian 12 systemd image for the test hosts.
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
  echo "setup-dev: run as root (sudo $0): it installs packages and runs podman as root" >&2
  exit 1
fi

need=()
for tool in podman runc debootstrap; do
  command -v "$tool" >/dev/null || need+=("$tool")
done
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
if ((${#need[@]})); then
  echo "setup-dev: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [[ ! -x .venv/bin/ansible-playbook ]] || ! cmp -s requirements-dev.txt .venv/.requirements-dev.txt; then
  echo "setup-dev: installing the Python tools into .venv (about a minute)"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
  cp requirements-dev.txt .venv/.requirements-dev.txt
fi

bash scripts/build-test-image.sh
echo "setup-dev: ready. Tests: sudo scripts/test.sh   Lab: sudo scripts/lab.sh up"
