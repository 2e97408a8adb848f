#!/usr/bin/env bash
# Make this machine able to read a 3Dconnexion SpaceMouse for iil_robot:
#   1. installs libhidapi-hidraw0 (the HID library pyspacemouse loads) if it is missing;
#   2. installs 70-iil-robot-spacemouse.rules into /etc/udev/rules.d and reloads udev, so
#      the logged-in user (uaccess) and the plugdev group may open /dev/hidrawN;
#   3. adds the user who ran `sudo` to plugdev (for headless PCs with no seat session).
# Usage: sudo udev/install.sh    (re-runs itself with sudo when started as a normal user)
# Afterwards unplug and replug the SpaceMouse, then check with `iil-robot doctor`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
rules_name="70-iil-robot-spacemouse.rules"
rules_dir="/etc/udev/rules.d"

say() { echo "[iil udev] $*"; }
die() { echo "[iil udev] error: $*" >&2; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || die "needs root and sudo is not installed: run it as root"
  say "needs root: re-running with sudo"
  exec sudo -- "$here/$(basename "${BASH_SOURCE[0]}")" "$@"
fi

[ -f "$here/$rules_name" ] || die "$here/$rules_name is missing: run this script from an iil_robot checkout"

# 1. libhidapi-hidraw0 ----------------------------------------------------------------
# grep reads all its input (no -q): an early exit would fail the pipeline under pipefail.
if ldconfig -p 2>/dev/null | grep 'libhidapi-hidraw\.so\.0' >/dev/null; then
  say "libhidapi-hidraw0 is already installed"
elif command -v apt-get >/dev/null 2>&1; then
  say "installing libhidapi-hidraw0"
  apt-get update
  apt-get install -y libhidapi-hidraw0
else
  die "apt-get not found: install hidapi's hidraw library (libhidapi-hidraw.so.0) with your package manager, then re-run"
fi

# 2. udev rule ------------------------------------------------------------------------
getent group plugdev >/dev/null || groupadd --system plugdev
install -D -m 0644 "$here/$rules_name" "$rules_dir/$rules_name"
say "installed $rules_dir/$rules_name"
if ! command -v udevadm >/dev/null 2>&1; then
  say "udevadm not found (a container?): the rule takes effect where udev runs; install it on the host, or pass /dev/hidrawN into the container"
elif udevadm control --reload-rules && udevadm trigger --subsystem-match=hidraw; then
  say "udev rules reloaded"
else
  say "udev is not running here (a container?): the rule takes effect where udev runs; install it on the host, or pass /dev/hidrawN into the container"
fi

# 3. plugdev --------------------------------------------------------------------------
user="${SUDO_USER:-}"
if [ -n "$user" ] && [ "$user" != root ]; then
  if id -nG "$user" | tr ' ' '\n' | grep -x plugdev >/dev/null; then
    say "$user is already in plugdev"
  else
    usermod -aG plugdev "$user"
    say "added $user to plugdev (takes effect at the next login)"
  fi
else
  say "started as root, not through sudo: add the operator's account with \`usermod -aG plugdev USER\`"
fi

say "done: unplug and replug the SpaceMouse, then run \`iil-robot doctor\`"
