#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# mkinitramfs.sh OUT: busybox-static + Debian's fio with the libraries ldd lists + our
# init with its scenario files (harness/guest/), as an uncompressed newc cpio (nothing
# to inflate under TCG at boot).
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:?usage: mkinitramfs.sh OUT}
ROOT=$(mktemp -d "${TMPDIR:-/tmp}/hib-initramfs.XXXXXX")
trap 'rm -rf "$ROOT"' EXIT

BB=/bin/busybox
FIO=$(command -v fio) || { echo "mkinitramfs: fio not installed" >&2; exit 1; }
file -L "$BB" 2>/dev/null | grep -q dynamic && { echo "mkinitramfs: $BB is not static (install busybox-static)" >&2; exit 1; }

mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,etc,lib64}
cp "$BB" "$ROOT/bin/busybox"
for a in $("$BB" --list-full); do
	[ -e "$ROOT/$a" ] || ln -s /bin/busybox "$ROOT/$a"
done
cp "$FIO" "$ROOT/usr/bin/fio"
# the libraries and the loader, at the paths ldd names
ldd "$FIO" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u | while read -r lib; do
	mkdir -p "$ROOT$(dirname "$lib")"
	cp -L "$lib" "$ROOT$lib"
done
[ -e /etc/ld.so.cache ] && cp /etc/ld.so.cache "$ROOT/etc/"
install -m 0755 "$TOP/harness/guest/init" "$ROOT/init"
# the scenarios' functions and the ones they share, sourced by init
mkdir -p "$ROOT/hib"
install -m 0644 "$TOP"/harness/guest/*.sh "$ROOT/hib/"
# hib-alt: the bench's alternating measurement (see the file)
gcc -static -O2 -Wall -Wextra -Werror -o "$ROOT/usr/bin/hib-alt" "$TOP/harness/guest/alt.c"
(cd "$ROOT" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet) > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "mkinitramfs: $OUT ($(du -m "$OUT" | cut -f1) MiB)" >&2
