#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# kernel.sh prepare        extract Debian's linux-source-6.12 into build/linux as a git
#                          tree (import tagged "base") and apply patches/series with git am
# kernel.sh build FLAVOUR  configure and build build/obj-FLAVOUR/arch/x86/boot/bzImage
#                          from harness/configs/base.config + FLAVOUR.config (after
#                          the fragments its "# extends: NAME..." line names)
# kernel.sh patchwise      build drivers/iommu/ at every patch of the series, W=1
# kernel.sh modules FLAVOUR  build the harness's test modules (harness/modules/) against
#                          build/obj-FLAVOUR and pack them as build/obj-FLAVOUR/hib-modules.cpio,
#                          an initramfs segment to append to build/initramfs.cpio
#
# Re-running reuses everything: the source tree is only reset when patches/ changed, the
# config is only regenerated when a fragment changed, and ccache (outside the repo) serves
# the objects a fresh clone has not built yet.
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
B=$TOP/build
SRC=$B/linux
TARBALL=${HIB_TARBALL:-/usr/src/linux-source-6.12.tar.xz}
PY=/usr/bin/python3
JOBS=${JOBS:-$(($(nproc) + 1))}

export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/io-buffer-pool-ccache}
# Paths under the repository are hashed relative to it, so a fresh clone elsewhere hits.
export CCACHE_BASEDIR=$TOP
export CCACHE_NOHASHDIR=1
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-8G}
export KBUILD_BUILD_USER=hib KBUILD_BUILD_HOST=guest
export KBUILD_BUILD_TIMESTAMP='2024-01-01'

die() { echo "kernel.sh: $*" >&2; exit 1; }
log() { echo "kernel.sh: $*" >&2; }

series_hash() {
	(cd "$TOP/patches" && cat series && { grep -v '^[[:space:]]*\(#\|$\)' series || true; } |
		xargs -r cat) | sha256sum | cut -d' ' -f1
}

git_k() { git -C "$SRC" -c user.name=hib -c user.email=hib@localhost "$@"; }

# make with the harness's compilers (ccache) and an unsuffixed uname -r: every kernel
# build goes through here; the caller gives the tree (-C) and the output (O=).
kmake() { make -s CC="ccache gcc" HOSTCC="ccache gcc" LOCALVERSION= "$@"; }

series_files() {
	grep -v '^[[:space:]]*\(#\|$\)' "$TOP/patches/series" | sed "s|^|$TOP/patches/|" || true
}

# True when base..HEAD holds exactly the patches of the series (a developer
# committed in build/linux and exported with git format-patch).
tree_is_series() {
	local a b
	a=$(git_k format-patch --stdout base..HEAD | git patch-id --stable | cut -d' ' -f1)
	b=$(series_files | xargs -r cat | git patch-id --stable | cut -d' ' -f1)
	[ "$a" = "$b" ]
}

prepare() {
	[ -f "$TARBALL" ] || die "$TARBALL missing: run harness/deps.sh (package linux-source-6.12)"
	mkdir -p "$B"
	if ! git -C "$SRC" rev-parse -q --verify refs/tags/base >/dev/null 2>&1; then
		log "extracting $TARBALL into $SRC (once)"
		rm -rf "$SRC" "$B/linux.tmp"
		mkdir -p "$B/linux.tmp"
		tar -xJf "$TARBALL" -C "$B/linux.tmp" --strip-components=1
		mv "$B/linux.tmp" "$SRC"
		# Debian's top-level .gitignore ignores the whole tree ("/*"): drop that block so
		# new files show up in git status; it is not part of upstream Linux.
		sed -i '/^# Debian packaging/,$d' "$SRC/.gitignore"
		git -C "$SRC" init -q -b master
		git_k add -A
		git_k commit -q -m "Debian linux-source-6.12 $(dpkg-query -W -f='${Version}' linux-source-6.12 2>/dev/null || echo unknown)" \
			-m "Imported by harness/kernel.sh; Debian's ignore-everything .gitignore block removed."
		git_k tag base
		rm -f "$SRC/.hib-applied"
	fi
	# .git/hib-applied records "SERIES-HASH HEAD" after the series was applied.  The
	# tree is reset only when it holds nothing but that: anything else is someone's work.
	local want have head dirty
	want=$(series_hash)
	have=$(cat "$SRC/.git/hib-applied" 2>/dev/null || echo "none $(git_k rev-parse base)")
	head=$(git_k rev-parse HEAD)
	dirty=$(git_k status --porcelain --untracked-files=no)
	if [ -z "$dirty" ] && [ "${have#* }" != "$head" ] && tree_is_series; then
		echo "$want $head" > "$SRC/.git/hib-applied"
		log "build/linux holds the series as exported (HEAD $(git_k rev-parse --short HEAD))"
		return
	fi
	if [ -n "$dirty" ] || [ "${have#* }" != "$head" ]; then
		[ "${HIB_TREE:-}" = keep ] && { log "HIB_TREE=keep: building $SRC as it is"; return; }
		die "$SRC has commits or edits that did not come from patches/.
  Commit and export them:  (cd $SRC && git format-patch base..HEAD -o $TOP/patches/)
  and list them in patches/series, or build the tree as it is with HIB_TREE=keep."
	fi
	if [ "${have% *}" = "$want" ]; then
		log "series already applied (HEAD $(git_k rev-parse --short HEAD))"
		return
	fi
	git_k am --abort >/dev/null 2>&1 || true
	git_k checkout -q -f --detach base
	git_k branch -q -f work base
	git_k checkout -q work
	local p n=0
	while read -r p; do
		case "$p" in ''|'#'*) continue ;; esac
		git_k am -q --keep-cr "$TOP/patches/$p" || die "patch $p does not apply (git am failed; see $SRC)"
		n=$((n + 1))
	done < "$TOP/patches/series"
	echo "$want $(git_k rev-parse HEAD)" > "$SRC/.git/hib-applied"
	log "applied $n patches on base"
}

build() {
	local fl=$1 obj=$B/obj-$1 frags h e
	[ -f "$TOP/harness/configs/$fl.config" ] || die "no harness/configs/$fl.config"
	frags=("$TOP/harness/configs/base.config")
	# a flavour built on others (lockstat: the bench kernel and more) names them
	for e in $(sed -n 's/^# extends: *//p' "$TOP/harness/configs/$fl.config"); do
		[ -f "$TOP/harness/configs/$e.config" ] || die "$fl.config extends $e: no harness/configs/$e.config"
		frags+=("$TOP/harness/configs/$e.config")
	done
	frags+=("$TOP/harness/configs/$fl.config")
	# A patch can change a Kconfig default: the series is part of the key too.
	h=$( (cat "${frags[@]}"; series_hash) | sha256sum | cut -d' ' -f1)
	mkdir -p "$obj"
	# LOCALVERSION= keeps uname -r at the plain upstream version (no "+" for a git tree).
	local mk=(kmake -C "$SRC" O="$obj")
	if [ "$(cat "$obj/.hib-fragments" 2>/dev/null)" != "$h" ] || [ ! -f "$obj/.config" ]; then
		# Generate the config in a scratch directory and install it only if it
		# differs: rewriting .config in place makes Kbuild rebuild everything,
		# a changed option alone rebuilds only the files that use it.
		local kc=$B/kconfig-$fl
		log "configuring $fl (tinyconfig + fragments)"
		mkdir -p "$kc"
		kmake -C "$SRC" O="$kc" tinyconfig >/dev/null
		"$SRC/scripts/kconfig/merge_config.sh" -m -O "$kc" "$kc/.config" "${frags[@]}" >/dev/null
		kmake -C "$SRC" O="$kc" olddefconfig >/dev/null
		if ! cmp -s "$kc/.config" "$obj/.config"; then
			cp "$kc/.config" "$obj/.config"
			"${mk[@]}" olddefconfig >/dev/null
		fi
		echo "$h" > "$obj/.hib-fragments"
	fi
	# Every option a fragment asks for must have survived Kconfig's dependency rules.
	PYTHONPATH="$TOP/harness" $PY -m hib.kconfig "$obj/.config" "${frags[@]}"
	log "building $fl kernel (O=$obj, -j$JOBS)"
	local t0=$SECONDS
	# "modules" writes Module.symvers, which the harness's own modules link against
	"${mk[@]}" -j"$JOBS" bzImage modules
	log "built $obj/arch/x86/boot/bzImage in $((SECONDS - t0)) s"
}

# Every patch of the series must build on its own: check out each commit of
# base..HEAD in a worktree and build drivers/iommu/ with W=1, with the test
# kernel's config and with it as users build it (no KUnit, no DMA-API debug, no
# fault injection: code only the tests use shows up there as unused).  Fails on
# a build error or on any W=1 warning.
patchwise() {
	local wt=$B/patchwise cfg=$B/obj-test/.config
	local c out n=0 fail=0 kind obj
	[ -f "$cfg" ] || die "patchwise needs $cfg: build the test kernel first"
	git_k worktree prune
	[ -e "$wt/.git" ] || git_k worktree add -q --detach "$wt" HEAD
	for c in $(git_k rev-list --reverse base..HEAD); do
		n=$((n + 1))
		git -C "$wt" checkout -q --detach "$c"
		for kind in test lean; do
			obj=$B/obj-patchwise
			[ "$kind" = test ] || obj=$B/obj-patchwise-lean
			mkdir -p "$obj"
			cp "$cfg" "$obj/.config"
			[ "$kind" = test ] || "$wt/scripts/config" --file "$obj/.config" \
				-d KUNIT -d IOMMU_IO_BUFFER_KUNIT_TEST -d DMA_API_DEBUG \
				-d IOMMU_IO_BUFFER_FAULT_INJECTION
			kmake -C "$wt" O="$obj" olddefconfig >/dev/null
			if ! out=$(kmake -C "$wt" O="$obj" -j"$JOBS" W=1 drivers/iommu/ 2>&1); then
				echo "patch $n ($(git -C "$wt" log --format=%s -1)), $kind config: build FAILED"
				echo "$out" | tail -20
				fail=1
			elif echo "$out" | grep -q 'warning:'; then
				echo "patch $n ($(git -C "$wt" log --format=%s -1)), $kind config: W=1 warnings"
				echo "$out" | grep -A3 'warning:' | head -20
				fail=1
			else
				echo "patch $n ($(git -C "$wt" log --format=%s -1)), $kind config: builds, W=1 clean"
			fi
		done
	done
	[ $n -gt 0 ] || echo "no patches in base..HEAD"
	return $fail
}

# Out-of-tree test modules of the harness, built in a copy under build/ (Kbuild writes
# its objects next to the sources), packed as lib/modules/NAME.ko in a newc cpio.
modules() {
	local fl=$1 obj=$B/obj-$1 mod=$B/mod-$1 d n
	[ -f "$obj/Module.symvers" ] || die "build the $fl kernel first (no $obj/Module.symvers)"
	rm -rf "$mod/root"
	mkdir -p "$mod" "$mod/root/lib/modules"
	rsync -a --delete "$TOP/harness/modules/" "$mod/src/"
	for d in "$mod"/src/*/; do
		[ -f "$d/Kbuild" ] || die "no module in harness/modules/ ($d has no Kbuild)"
		n=$(basename "$d")
		out=$(kmake -C "$SRC" O="$obj" M="$d" W=1 modules 2>&1) || die "module $n: build failed:
$out"
		if echo "$out" | grep -q 'warning:'; then
			die "module $n: W=1 warnings:
$out"
		fi
		cp "$d/$n.ko" "$mod/root/lib/modules/"
	done
	(cd "$mod/root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) > "$obj/hib-modules.cpio"
	log "modules of $fl: $(cd "$mod/root/lib/modules" && echo *.ko) in $obj/hib-modules.cpio"
}

case "${1:-}" in
prepare) prepare ;;
patchwise) patchwise ;;
build) [ $# -eq 2 ] || die "usage: kernel.sh build FLAVOUR"; build "$2" ;;
modules) [ $# -eq 2 ] || die "usage: kernel.sh modules FLAVOUR"; modules "$2" ;;
*) die "usage: kernel.sh prepare | build FLAVOUR | modules FLAVOUR | patchwise" ;;
esac
