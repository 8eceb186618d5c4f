#!/usr/bin/env bash
# Prepare this machine (Debian 12 or 13, as root) to run the tests and the lab:
# podman + runc + debootstrap, a virtual environment .venv with the pinned tools
# (requirements-dev.txt) on a Python >= 3.12 (ansible-core 2.20+ needs it on the control
# node), and the cached Debian 12 and 13 systemd images for the test hosts.
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
# The tunnel scenario sets a route inside a host's network namespace (nsenter, ip).
command -v ip >/dev/null || need+=(iproute2)
# The dashboard's browser test (molecule/resources/metrics.yml): headless Chromium.
command -v chromium >/dev/null || need+=(chromium)
if ((${#need[@]})); then
  echo "setup-dev: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# The control node's Python: ansible-core 2.20 and newer need 3.12 or newer.
python=$(bash scripts/find-python.sh) || exit 1
if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
  echo "setup-dev: installing python3-venv for $python"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi

stamp="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])') $(sha256sum requirements-dev.txt | cut -c1-16)"
if [[ ! -x .venv/bin/ansible-playbook ]] || [[ "$(cat .venv/.ipp-stamp 2>/dev/null)" != "$stamp" ]]; then
  echo "setup-dev: installing the Python tools into .venv with $python (about a minute)"
  rm -rf .venv
  "$python" -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
  echo "$stamp" >.venv/.ipp-stamp
fi

# Podman's settings for the test hosts (FACTS: runc, and ulimits under the sandbox's caps).
if ! grep -qs 'ipp-cluster' /etc/containers/containers.conf; then
  mkdir -p /etc/containers
  cat >>/etc/containers/containers.conf <<'CONF'
# ipp-cluster test hosts: runc (crun fails on this machine's cgroups), ulimits it allows.
[containers]
default_ulimits = ["nofile=10000:10000", "nproc=30000:30000"]
[engine]
runtime = "runc"
CONF
fi

IPP_TEST_SUITE=bookworm IPP_TEST_IMAGE=localhost/ipp-debian12:latest bash scripts/build-test-image.sh
IPP_TEST_SUITE=trixie IPP_TEST_IMAGE=localhost/ipp-debian13:latest bash scripts/build-test-image.sh
echo "setup-dev: ready. Tests: sudo scripts/test.sh   Lab: sudo scripts/lab.sh up"
