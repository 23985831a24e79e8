# shellcheck shell=sh
# SPDX-License-Identifier: GPL-2.0-only
#
# Shared by the scenarios of harness/guest/init (sourced first): the HIB line
# protocol (out, die, finish), the command line (arg), the NVMe device, the bench modes
# (set_mode and the pool knobs), the pool's counters and policy, the function profiler,
# lock_stat, the leak checks and the edu device's checks.

OUT=/dev/ttyS1
[ -c $OUT ] || OUT=/dev/console
out() { echo "HIB $*" > $OUT; }
say() { echo "hib: $*" > /dev/console; }
die() { out "error $*"; say "error: $*"; finish; }
finish() { out end; sync; poweroff -f; sleep 10; }

arg() {	# arg NAME DEFAULT: value of hib.NAME= on the command line
	v=$(tr ' ' '\n' < /proc/cmdline | sed -n "s/^hib\.$1=//p" | tail -n 1)
	echo "${v:-$2}"
}


blockdev_wait() {	# sets DEV once the namespace of $BDF is there
	i=0
	while [ $i -lt 300 ]; do
		for n in /sys/bus/pci/devices/$BDF/nvme/nvme*/nvme*n1; do
			[ -e "$n" ] && [ -b "/dev/${n##*/}" ] && DEV=/dev/${n##*/} && return 0
		done
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# Modes.  strict: DMA domain (strict invalidation), no bouncing (iommu.bounce=off);
# strict2: the same again, an A/A control; pool: strict with the pool's defaults
# (iommu.bounce=auto: on where the IOMMU says maps are costly, and the boot threshold,
# auto unless the command line says otherwise); pool-auto: the pool on whatever the
# IOMMU, threshold auto (the measured policy); pool-all: the pool on, the threshold
# raised to the largest size class, so that every mapping the classes hold is bounced;
# lazy, lazy-pool, lazy-pool-auto, lazy-pool-all: the same in a DMA-FQ domain
# (deferred invalidation); passthrough: identity domain; swiotlb: strict with the pool
# off, for an untrusted device (its sub-granule mappings bounce through swiotlb).
domain_type() {
	case $1 in
	strict|strict2|pool|pool-auto|pool-all|swiotlb) echo DMA ;;
	lazy|lazy-pool|lazy-pool-auto|lazy-pool-all) echo DMA-FQ ;;
	passthrough) echo identity ;;
	*) return 1 ;;
	esac
}

POOL=/sys/module/iommu/parameters
# The pool's debugfs directory: in the IOMMU's with CONFIG_IOMMU_DEBUGFS (the test
# kernel), else at the top (the bench kernel); a directory per pool in it.
IOBP=/sys/kernel/debug/iommu/io_buffer_pool
[ -d $IOBP ] || IOBP=/sys/kernel/debug/io_buffer_pool
STATS=$IOBP/stats

THR0=$(cat /sys/module/iommu/parameters/bounce_threshold 2>/dev/null)

largest_class() {	# the slot size of the highest class iommu.bounce_classes selects
	m=$(cat $POOL/bounce_classes) || return 1
	i=0; top=-1
	while [ $i -lt 8 ]; do
		[ $(( (m >> i) & 1 )) -eq 1 ] && top=$i
		i=$((i + 1))
	done
	[ $top -ge 0 ] && echo $(( 4096 << top ))	# x86: 4 KiB pages
}

mode_knobs() {	# mode_knobs MODE: the pool knobs of that mode, in $want and $thr
	# the bounce pool is a run-time knob: on in the pool modes only
	want=off; thr=$THR0
	case $1 in
	*pool) want=auto ;;
	*pool-auto) want=on; thr=auto ;;
	*pool-all) want=on; thr=$(largest_class) || die "cannot read iommu.bounce_classes" ;;
	# the pool on but bouncing nothing: what its hooks cost the normal path
	*pool-none) want=on; thr=0 ;;
	esac
}

knobs_set() {	# knobs_set MODE: write the pool knobs of that mode and check they took
	mode_knobs "$1"
	if [ -w $POOL/bounce ]; then
		echo $want > $POOL/bounce || die "cannot set iommu.bounce=$want"
		[ "$(cat $POOL/bounce)" = $want ] || die "iommu.bounce did not become $want"
		echo "$thr" > $POOL/bounce_threshold || die "cannot set iommu.bounce_threshold=$thr"
	elif [ $want != off ]; then
		die "mode $1 needs a kernel with CONFIG_IOMMU_IO_BUFFER"
	fi
}

set_mode() {	# set_mode MODE: the IOMMU domain type and pool knobs of that mode
	t=$(domain_type "$1") || die "unknown mode $1"
	knobs_set "$1"
	# Rebind the driver only when the domain type changes: the knobs act on the
	# next mapping, and a mode that differs only in them keeps its warm domain.
	cur_t=$(cat /sys/kernel/iommu_groups/$GRP/type)
	if [ "$cur_t" != "$t" ] || [ ! -e /sys/bus/pci/devices/$BDF/driver ]; then
		if [ -e /sys/bus/pci/devices/$BDF/driver ]; then
			echo "$BDF" > /sys/bus/pci/drivers/nvme/unbind || die "unbind $BDF failed"
		fi
		echo "$t" > /sys/kernel/iommu_groups/$GRP/type || die "cannot set group $GRP to $t"
		echo "$BDF" > /sys/bus/pci/drivers/nvme/bind || die "bind $BDF failed"
	fi
	blockdev_wait || die "no namespace for $BDF"
	got=$(cat /sys/kernel/iommu_groups/$GRP/type)
	[ "$got" = "$t" ] || die "group $GRP is $got, wanted $t"
	out mode "$1" "group=$GRP" "type=$got" "dev=$DEV" \
		"bounce=$(cat $POOL/bounce 2>/dev/null || echo none)" \
		"threshold=$(cat $POOL/bounce_threshold 2>/dev/null || echo none)" \
		"group_bounce=$(cat /sys/kernel/iommu_groups/$GRP/bounce 2>/dev/null || echo none)"
}

PFILE=$IOBP/policy
policy() {	# policy TAG DEVICE: the cost policy's decisions for DEVICE's domain
	[ -r $PFILE ] || return 0
	grep "^$2 class=" $PFILE | while read -r pl; do out policy "$1" "$pl"; done
}

ranges() {	# ranges TAG: per pool, the classes set up, SIZExSLOTS@FIRST-IOVA (debugfs policy)
	[ -r $PFILE ] || return 0
	grep -v ' class=' $PFILE | while read -r pdev prest; do
		out ranges "$1" "$pdev" "${prest##*classes=}"
	done
}

stats() {	# stats TAG: the pool's counters, if the kernel has a pool
	[ -r $STATS ] || return 0
	# sh has no locals: names of their own, not the bench loop's k
	while read -r sk sv; do out stat "$1" "$sk" "$sv"; done < $STATS
}

# stats TAG from one read of the counters in which no slot is on its way out: the idle
# eviction takes its victims off the cached count, then unmaps them one by one, without
# the pools' lock that the summed stats file and the shrinker take; a read in between
# finds slots mapped but not cached (CI once counted 2 such "leaks" in the reliability
# run's memory-hog case).  Read again, 0.1 s apart and 3 s at most, until the two counts
# agree, and write that read; a slot really lost stays mapped and still fails.  The
# waits are recorded as the stat "settle_waits".
leak_stats() {	# leak_stats TAG
	[ -r $STATS ] || return 0
	lw=0
	while cat $STATS > /tmp/leak.stats &&
	      [ "$(sed -n 's/^slots_mapped //p' /tmp/leak.stats)" != \
		"$(sed -n 's/^slots_cached //p' /tmp/leak.stats)" ] && [ $lw -lt 30 ]; do
		sleep 0.1
		lw=$((lw + 1))
	done
	while read -r sk sv; do out stat "$1" "$sk" "$sv"; done < /tmp/leak.stats
	out stat "$1" settle_waits $lw
}

pool_stats() {	# pool_stats TAG DEVICE: the counters of DEVICE's pool alone, its own directory
	[ -r "$IOBP/$2/stats" ] || { out error "no $IOBP/$2/stats: no debugfs directory for the pool of $2"; return 0; }
	while read -r sk sv; do out stat "$1" "$sk" "$sv"; done < "$IOBP/$2/stats"
}

cpu_stats() {	# cpu_stats TAG: the pool's counters and its slots cached per CPU (cpuN_cached)
	stats "$1"
	while read -r sc sn; do out stat "$1" "${sc}_cached" "$sn"; done \
		< $IOBP/cpu_cached
}

# hib.lockstat=1: /proc/lock_stat (CONFIG_LOCK_STAT) cleared right before a fio run, and
# after it the entry of every class whose name has "iobp_" in it (its line "NAME: N..."
# and the contention points below it: the pool's iobp_class_lock and iobp_pcp_lock,
# which harness/hib/scale.py picks by their exact names) and lockdep's warning if it stopped
# counting; the pool's counters before the run (its bounced).
lock_clear() {	# lock_clear TAG
	stats "$1 before"
	echo 0 > /proc/lock_stat
}
lock_dump() {	# lock_dump TAG
	awk '/: +[0-9]/ { keep = index($0, "iobp_") > 0 } NF && (keep || /\*WARNING\*/)' /proc/lock_stat |
		while read -r l; do out lockstat "$1" "$l"; done
}

TR=/sys/kernel/tracing
prof_setup() {
	echo 'iommu_dma_map_page iommu_dma_unmap_page iommu_dma_map_sg iommu_dma_unmap_sg' \
		> $TR/set_ftrace_filter || die "cannot filter the function profiler"
}
prof_start() { echo 0 > $TR/function_profile_enabled; echo 1 > $TR/function_profile_enabled; }
prof_stop() {	# prof_stop TAG [KIND ERE]: dump every CPU's profile (prof, iommu_dma_)
	echo 0 > $TR/function_profile_enabled
	for f in $TR/trace_stat/function*; do
		c=${f##*function}
		grep -E "${3:-iommu_dma_}" "$f" | while read -r line; do
			out "${2:-prof}" "$1" "cpu=$c" "$line"
		done
	done
}


leak_checks() {
	# Releasing the device makes DMA-API debug report any mapping still outstanding.
	echo "$BDF" > /sys/bus/pci/drivers/nvme/unbind
	leak_stats "final"
	e=/sys/kernel/debug/dma-api/error_count
	[ -r $e ] && out dma-api-errors "$(cat $e)"
	k=/sys/kernel/debug/kmemleak
	if [ -w $k ]; then
		echo scan > $k
		out kmemleak "$(grep -c '^unreferenced object' $k)"
	fi
}

# QEMU's edu device (1234:11e8), if the boot has one, through lib/modules/edu_dma.ko:
# map once, the device writes, sync for the CPU, read (and the other directions), with
# the pool on (bounce=on, threshold 4096: every mapping of 2 KiB bounced) and off.
edu_load() {	# sets e to the edu device's address once edu_dma.ko drives it; 1: no device
	e=
	for d in /sys/bus/pci/devices/*; do
		[ "$(cat $d/vendor):$(cat $d/device)" = 0x1234:0x11e8 ] && e=${d##*/} && break
	done
	[ -n "$e" ] || return 1
	[ -f /lib/modules/edu_dma.ko ] || { out error "edu device $e but no edu_dma.ko in the initramfs"; return 1; }
	insmod /lib/modules/edu_dma.ko 2> /tmp/insmod.err ||
		{ out error "insmod edu_dma.ko: $(head -c 200 /tmp/insmod.err)"; return 1; }
	[ -e /sys/bus/pci/drivers/edu_dma/$e ] || { out error "edu_dma did not bind $e"; return 1; }
}

edu_checks() {
	edu_load || return 0
	g=$(basename "$(readlink /sys/bus/pci/devices/$e/iommu_group)")
	t_e=$(cat $POOL/bounce_threshold); b_e=$(cat $POOL/bounce)
	for m in pool strict; do
		if [ $m = pool ]; then
			# every 2 KiB mapping of the checks bounced, whatever the policy says
			echo on > $POOL/bounce; echo 4096 > $POOL/bounce_threshold
			# a first run: the domain's first mappings take the normal path while a
			# worker sets up the 4 KiB class, as many as come before it is done
			echo 1 > /sys/module/edu_dma/parameters/run ||
				{ out error "edu_dma warm-up run failed"; continue; }
			out edu-warmup "$(cat /sys/module/edu_dma/parameters/result)"
		else
			echo off > $POOL/bounce
		fi
		stats "edu $m before"
		echo 1 > /sys/module/edu_dma/parameters/run ||
			{ out error "edu_dma run failed ($m)"; continue; }
		stats "edu $m after"
		out edu $m "group=$g" "type=$(cat /sys/kernel/iommu_groups/$g/type)" \
			"$(cat /sys/module/edu_dma/parameters/result)"
	done
	echo "$b_e" > $POOL/bounce
	echo "$t_e" > $POOL/bounce_threshold
}
