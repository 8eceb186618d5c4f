#!/usr/bin/env bash
# Build the base image for the molecule hosts and the lab: a Debian 12 root file system
# made with debootstrap (no container registry is needed), imported into podman.
# The image is cached: nothing is done when it already exists (set IPP_IMAGE_REBUILD=1 to force).
set -euo pipefail

image="${IPP_TEST_IMAGE:-localhost/ipp-debian12:latest}"
suite="${IPP_TEST_SUITE:-bookworm}"
packages="systemd,systemd-sysv,dbus,python3,python3-venv,openssh-server,sudo,iproute2,procps,ca-certificates,acl"

if [[ "${IPP_IMAGE_REBUILD:-0}" != 1 ]] && podman image exists "$image"; then
  echo "build-test-image: $image is cached, nothing to do"
  exit 0
fi

mirror="${IPP_DEBIAN_MIRROR:-}"
if [[ -z "$mirror" ]]; then
  # The mirror this machine's apt already uses (deb822 or one-line format).
  mirror=$(grep -hoE '^URIs: *[^ ]+' /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | awk '{print $2}' | grep -v security | head -n1 || true)
fi
if [[ -z "$mirror" ]]; then
  mirror=$(grep -hoE '^deb +(\[[^]]*\] +)?[^ ]+' /etc/apt/sources.list 2>/dev/null \
    | awk '{print $NF}' | grep -v security | head -n1 || true)
fi
mirror="${mirror:-http://deb.debian.org/debian}"

root=$(mktemp -d /var/tmp/ipp-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT

echo "build-test-image: debootstrap $suite from $mirror (about a minute)"
debootstrap --variant=minbase --include="$packages" "$suite" "$root" "$mirror" >/dev/null
# Empty machine-id: systemd makes one at first boot, so every container gets its own.
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
# sshd host keys are made per container at boot, not baked into the image.
rm -f "$root"/etc/ssh/ssh_host_*
mkdir -p "$root/etc/systemd/system/ssh.service.d"
cat >"$root/etc/systemd/system/ssh.service.d/keygen.conf" <<'UNIT'
[Service]
ExecStartPre=
ExecStartPre=/usr/bin/ssh-keygen -A
ExecStartPre=/usr/sbin/sshd -t
UNIT
apt-get -o Dir="$root" clean 2>/dev/null || rm -rf "$root"/var/cache/apt/archives/*.deb

echo "build-test-image: importing into podman as $image"
tar -C "$root" -c . | podman import \
  --change 'CMD ["/sbin/init"]' --change 'STOPSIGNAL SIGRTMIN+3' - "$image" >/dev/null
echo "build-test-image: $image ready"
