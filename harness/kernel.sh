#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# kernel.sh prepare        extract Debian's linux-source-6.12 into build/linux as a git
#                          tree (import tagged "base") and apply patches/series with git am
# kernel.sh build FLAVOUR  configure and build build/obj-FLAVOUR/arch/x86/boot/bzImage
#                          from harness/configs/base.config + FLAVOUR.config (after
#                          the fragments its "# extends: NAME..." line names)
# kernel.sh patchwise [RANGE]  build drivers/iommu/ and kernel/dma/ at every patch, W=1
# kernel.sh checkers [RANGE]  sparse and kernel-doc at every patch of the series, coccicheck
#                          at its last patch on the C files the series adds
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
# KMAKE_QUIET= (empty) drops -s: a silent build sends its commands' stdout to /dev/null,
# which is where coccicheck writes its reports.
kmake() { make ${KMAKE_QUIET--s} CC="ccache gcc" HOSTCC="ccache gcc" LOCALVERSION= "$@"; }

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
# base..HEAD in a worktree and build drivers/iommu/ and kernel/dma/ (the series
# changes kernel/dma/mapping.c) with W=1, with the test kernel's config and with it
# as users build it (no KUnit, no DMA-API debug, no fault injection: code only the
# tests use shows up there as unused).  Fails on a build error or on any W=1
# warning.  (VT-d, whose driver patch 10 touches, is in neither config: its W=1
# build at base already warns, in dmar.c and iommu.c.)
patchwise() {
	local range=${1:-base..HEAD} wt=$B/patchwise cfg=$B/obj-test/.config
	local c out n=0 fail=0 kind obj
	[ -f "$cfg" ] || die "patchwise needs $cfg: build the test kernel first"
	git_k worktree prune
	[ -e "$wt/.git" ] || git_k worktree add -q --detach "$wt" HEAD
	for c in $(git_k rev-list --reverse "$range"); do
		n=$((n + 1))
		git -C "$wt" checkout -q --detach "$c"
		# what the patch changes is built again even where the worktree already
		# held the same bytes (git leaves such a file's time alone)
		git -C "$wt" diff --name-only --diff-filter=AM "$c^" "$c" |
			(cd "$wt" && xargs -r touch)
		for kind in test lean; do
			obj=$B/obj-patchwise
			[ "$kind" = test ] || obj=$B/obj-patchwise-lean
			mkdir -p "$obj"
			cp "$cfg" "$obj/.config"
			[ "$kind" = test ] || "$wt/scripts/config" --file "$obj/.config" \
				-d KUNIT -d IOMMU_IO_BUFFER_KUNIT_TEST -d DMA_API_DEBUG \
				-d IOMMU_IO_BUFFER_FAULT_INJECTION
			kmake -C "$wt" O="$obj" olddefconfig >/dev/null
			if ! out=$(kmake -C "$wt" O="$obj" -j"$JOBS" W=1 drivers/iommu/ kernel/dma/ 2>&1); then
				echo "patch $n ($(git -C "$wt" log --format=%s -1)), $kind config: build FAILED"
				tail -20 <<<"$out"
				fail=1
			elif grep -q 'warning:' <<<"$out"; then
				echo "patch $n ($(git -C "$wt" log --format=%s -1)), $kind config: W=1 warnings"
				grep -A3 'warning:' <<<"$out" | head -20 || true
				fail=1
			else
				echo "patch $n ($(git -C "$wt" log --format=%s -1)), $kind config: builds, W=1 clean"
			fi
		done
	done
	[ $n -gt 0 ] || { echo "no patches in $range"; fail=1; }
	return $fail
}

# The kernel's own checkers, as a reviewer runs them.  At every patch: sparse (make
# C=2) on each C file the patch changes that the test config builds, with no warning
# that the same file did not already give at base; scripts/kernel-doc -none -Wall on
# each file the series adds that the patch changes, with no report at all.  At the
# range's last patch: coccicheck (MODE=report, the C=1 CHECK=scripts/coccicheck form,
# one file at a time) on each C file the series adds that the range changes, with no
# report.  (coccicheck ran at every patch until 2026-12-07: about 70 s a patch, two
# thirds of make check's checker time, for a file the last patch holds in full.)
# (checkpatch --strict runs from harness/check.py; W=1 from patchwise above.)
# CHECKERS="sparse kernel-doc coccicheck" picks some; a range other than base..HEAD
# (harness/check.py's broken patches) can be given.
checkers() {
	local range=${1:-base..HEAD} wt=$B/checkers obj=$B/obj-checkers cfg=$B/obj-test/.config
	local want=${CHECKERS:-sparse kernel-doc coccicheck} c f n=0 fail=0 subj out new
	local files key first= cocci
	[ -f "$cfg" ] || die "checkers need $cfg: build the test kernel first"
	command -v sparse >/dev/null || die "no sparse: run harness/deps.sh"
	command -v spatch >/dev/null || die "no spatch (coccinelle): run harness/deps.sh"
	git_k worktree prune
	[ -e "$wt/.git" ] || git_k worktree add -q --detach "$wt" base
	mkdir -p "$obj"
	# What sparse says, at base, about the existing C files the series changes that
	# the test config builds; kept while the config, the list and sparse stay the same.
	files=$(git_k diff --name-only --diff-filter=M base HEAD -- '*.c' | tr '\n' ' ')
	key=$( (cat "$cfg"; echo "$files"; sparse --version) | sha256sum | cut -d' ' -f1)
	if [[ " $want " == *" sparse "* ]] && [ "$(head -1 "$obj/sparse-base" 2>/dev/null)" != "# $key" ]; then
		git -C "$wt" checkout -q --detach base
		cp "$cfg" "$obj/.config"
		kmake -C "$wt" O="$obj" olddefconfig >/dev/null
		echo "# $key" > "$obj/sparse-base.tmp"
		for f in $files; do
			sparse_built "$wt" "$obj" "$f" || continue
			kmake -C "$wt" O="$obj" -j"$JOBS" C=2 CHECK=sparse "${f%.c}.o" 2>&1 |
				sparse_norm >> "$obj/sparse-base.tmp" || true
		done
		mv "$obj/sparse-base.tmp" "$obj/sparse-base"
	fi
	for c in $(git_k rev-list --reverse "$range"); do
		n=$((n + 1))
		[ -n "$first" ] || first=$c
		git -C "$wt" checkout -q --detach "$c"
		subj="patch $n ($(git -C "$wt" log --format=%s -1))"
		cp "$cfg" "$obj/.config"
		kmake -C "$wt" O="$obj" olddefconfig >/dev/null
		for f in $(git -C "$wt" diff --name-only --diff-filter=AM "$c^" "$c" -- '*.c' '*.h'); do
			new=1
			git -C "$wt" cat-file -e "base:$f" 2>/dev/null && new=0
			if [[ " $want " == *" sparse "* ]] && [[ $f == *.c ]] &&
			   [ "$f" != drivers/iommu/io-buffer-pool-test.c ]; then
				if ! sparse_built "$wt" "$obj" "$f"; then
					echo "$subj: sparse: $f is not built in the test config, skipped"
				elif ! out=$(kmake -C "$wt" O="$obj" -j"$JOBS" C=2 CHECK=sparse "${f%.c}.o" 2>&1); then
					echo "$subj: sparse: $f does not build"; tail -10 <<<"$out"; fail=1
				elif out=$(sparse_norm <<<"$out" | grep -vxF -f "$obj/sparse-base"); then
					echo "$subj: sparse: new warnings in $f"; head -20 <<<"$out"; fail=1
				else
					echo "$subj: sparse: $f clean (no new warnings)"
				fi
			fi
			[ $new = 1 ] || continue
			if [[ " $want " == *" kernel-doc "* ]]; then
				if out=$("$wt/scripts/kernel-doc" -none -Wall "$wt/$f" 2>&1) && [ -z "$out" ]; then
					echo "$subj: kernel-doc: $f clean"
				else
					echo "$subj: kernel-doc: $f"; head -20 <<<"$out"; fail=1
				fi
			fi
		done
	done
	[ $n -gt 0 ] || { echo "no patches in $range"; return 1; }
	# the worktree and its config are at the range's last patch now
	if [[ " $want " == *" coccicheck "* ]]; then
		cocci=$(git_k diff --no-renames --name-only --diff-filter=AM "$first^" "$c" -- '*.c') ||
			{ echo "cannot list the C files of $range"; return 1; }
		for f in $cocci; do
			git -C "$wt" cat-file -e "base:$f" 2>/dev/null && continue
			if ! out=$(cocci_file "$wt" "$obj" "$f" 2>&1) || [ -n "$out" ]; then
				echo "$subj: coccicheck: $f"; cat <<<"$out"; fail=1
			else
				echo "$subj: coccicheck: $f clean"
			fi
		done
	fi
	return $fail
}

# sparse's warnings and errors, without line and column (they move from patch to patch)
sparse_norm() {
	sed -n 's/^\([^: ]*\):[0-9]*:[0-9]*: \(warning\|error\): /\1: \2: /p' | sort -u
}

# Whether the test config builds $3: its object exists after patchwise-style builds,
# or it lies in kernel/dma/, which every config with DMA builds.
sparse_built() {
	local wt=$1 obj=$2 f=$3
	[[ $f == kernel/dma/* ]] && return 0
	kmake -C "$wt" O="$obj" -j"$JOBS" "$(dirname "$f")/" >/dev/null 2>&1 || return 0
	[ -f "$obj/${f%.c}.o" ]
}

# coccicheck MODE=report on one file, its reports only (scripts/coccicheck also prints
# every spatch command it runs): the kernel's C=1 CHECK=scripts/coccicheck form for a
# file that is its own object; a file #included into another (the KUnit suite) goes
# through scripts/coccicheck directly, with the include paths Kbuild would give.
cocci_file() {
	local wt=$1 obj=$2 f=$3 out rc=0 cc
	cc=$(cd "$wt" && pwd)/scripts/coccicheck
	if [ -f "$obj/${f%.c}.o" ]; then
		# C=1 checks what it compiles: this object alone (C=2 would also run the
		# 70 semantic patches over every file of the tree's prepare stage)
		rm -f "$obj/${f%.c}.o"
		out=$(KMAKE_QUIET= kmake -C "$wt" O="$obj" C=1 CHECK="$cc" MODE=report "${f%.c}.o" 2>&1) ||
			rc=$?
	else
		out=$(cd "$wt" && C=1 MODE=report srctree=. \
			LINUXINCLUDE="-I./arch/x86/include -I$obj/arch/x86/include/generated -I./include -I$obj/include -include ./include/linux/kconfig.h" \
			"$cc" "$f" 2>&1) || rc=$?
	fi
	if [ $rc -ne 0 ]; then
		echo "coccicheck failed (exit $rc):"
		tail -20 <<<"$out"
		return 1
	fi
	grep -E '^[^ :]+:[0-9]+:[0-9]+-[0-9]+: ' <<<"$out" || true
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
patchwise) patchwise "${2:-}" ;;
checkers) checkers "${2:-}" ;;
build) [ $# -eq 2 ] || die "usage: kernel.sh build FLAVOUR"; build "$2" ;;
modules) [ $# -eq 2 ] || die "usage: kernel.sh modules FLAVOUR"; modules "$2" ;;
*) die "usage: kernel.sh prepare | build FLAVOUR | modules FLAVOUR | patchwise [RANGE] | checkers [RANGE]" ;;
esac
