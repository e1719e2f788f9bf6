#!/usr/bin/env bash
# What the KVM backend needs from the host: QEMU >= 10 (older QEMU corrupts TCG migration of busy
# guests), cpio (tests read the initramfs back) and kmod (module dependencies of the guest image).
# Installed with apt when run as root; otherwise this says what is missing and the KVM tests skip.
set -euo pipefail

qemu_ok() {
  command -v qemu-system-x86_64 >/dev/null 2>&1 || return 1
  local major
  major=$(qemu-system-x86_64 --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p' | head -1)
  [ "${major:-0}" -ge 10 ]
}

if qemu_ok && command -v cpio >/dev/null && command -v depmod >/dev/null; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "vsim: QEMU >= 10, cpio or kmod missing and not root with apt: the KVM backend's tests" \
       "will be skipped (install qemu-system-x86 >= 10, cpio and kmod to run them)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
suite=""
if [ -r /etc/os-release ] && grep -q '^VERSION_CODENAME=bookworm' /etc/os-release; then
  # Debian 12 ships QEMU 7.2; QEMU 10 comes from bookworm-backports.
  list=/etc/apt/sources.list.d/vsim-bookworm-backports.list
  if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo "deb http://deb.debian.org/debian bookworm-backports main" > "$list"
  fi
  suite="-t bookworm-backports"
fi
echo "vsim: installing QEMU for the KVM backend (apt-get)" >&2
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $suite qemu-system-x86 >/dev/null
apt-get install -y -qq --no-install-recommends cpio kmod >/dev/null
qemu-system-x86_64 --version | head -1 >&2
