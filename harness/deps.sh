#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Install what the harness needs with apt-get, once; a no-op when all is there.
set -euo pipefail

pkgs=(linux-source-6.12 qemu-system-x86 qemu-utils fio busybox-static ccache
      python3 python3-matplotlib gcc make bc bison flex libelf-dev libssl-dev
      cpio xz-utils kmod rsync git perl python3-ply python3-git libc6-dev
      acpica-tools sparse coccinelle ocaml-nox b4)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
