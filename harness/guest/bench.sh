# shellcheck shell=sh
# SPDX-License-Identifier: GPL-2.0-only
#
# Scenario bench (harness/guest/init): the fio matrix, modes taking turns; see init.

# fio_cell TAG MODE RW BS NUMJOBS RUNTIME: one fio run of the matrix, its terse line in $res.
# With hib.pin=1 job n runs on vCPU n only, and so does its NVMe queue's interrupt: the
# guest scheduler cannot move a job between vCPUs in the middle of a run.
fio_cell() {
	pin=
	ncpu=$(nproc)
	last=$(( ($5 < ncpu ? $5 : ncpu) - 1 ))	# more jobs than vCPUs: split wraps them
	[ "$(arg pin 1)" = 1 ] && pin="--cpus_allowed=0-$last --cpus_allowed_policy=split"
	res=$(fio --name=cell --filename="$DEV" --direct=1 --rw="$3" $pin $mem \
		--ioengine=libaio --iodepth="$qd" --bs="$4" --numjobs="$5" --iomem_align="${align:-0}" \
		--group_reporting --time_based --runtime="$6" \
		--ramp_time="$ramp" --output-format=terse --terse-version=3 \
		2>/tmp/fio.err) || die "fio failed for $1: $(head -c 300 /tmp/fio.err)"
}

# alt_cell RW BS NUMJOBS REP SEED MODE...: modes of one domain type take turns within
# one fio run (hib-alt, harness/guest/alt.c: a turn of hib.seg ms, the first hib.skip ms
# or more not counted, the order shuffled per cycle from SEED), hib.runtime s each in
# all after hib.ramp of warm-up; one "HIB alt" line.  Each mode set with set_mode first.
alt_cell() {
	a_rw=$1; a_bs=$2; a_nj=$3; a_rep=$4; a_seed=$5; shift 5
	specs=
	for m in "$@"; do
		mode_knobs "$m"
		if [ -w $POOL/bounce ]; then
			specs="$specs $POOL/bounce=$want,$POOL/bounce_threshold=$thr"
		else
			specs="$specs -"
		fi
	done
	bsl=$(echo "$a_bs" | tr KMIB kmib)
	case $bsl in
	*k|*kb|*kib) bv=${bsl%%k*}; bu=2 ;;
	*m|*mb|*mib) bv=${bsl%%m*}; bu=2048 ;;
	*) bv=$bsl; bu=0 ;;
	esac
	case $bv in ''|*[!0-9]*) die "block size $a_bs: expected e.g. 512, 4k or 1m" ;; esac
	if [ $bu = 0 ]; then sect=$(((bv + 511) / 512)); else sect=$((bv * bu)); fi
	pin=
	ncpu=$(nproc)
	last=$(( (a_nj < ncpu ? a_nj : ncpu) - 1 ))
	[ "$(arg pin 1)" = 1 ] && pin="--cpus_allowed=0-$last --cpus_allowed_policy=split"
	total=$((runtime * 1000 * $#))
	fio --name=alt --filename="$DEV" --direct=1 --rw="$a_rw" $pin $mem \
		--ioengine=libaio --iodepth="$qd" --bs="$a_bs" --numjobs="$a_nj" --iomem_align="${align:-0}" \
		--group_reporting --time_based --runtime=$((total / 1000 + 60)) \
		--output-format=terse --terse-version=3 > /tmp/fio.alt 2>/tmp/fio.err &
	fpid=$!
	ares=$(hib-alt "/sys/block/${DEV##*/}/stat" "$(arg seg 50)" "$(arg skip 15)" \
		"$ramp_ms" "$total" "$a_seed" $((a_nj * qd * sect)) $specs 2>/tmp/alt.err)
	arc=$?
	kill -0 $fpid 2>/dev/null ||
		die "fio ended before hib-alt in $* $a_rw $a_bs: $(head -c 300 /tmp/fio.err)"
	kill -INT $fpid
	wait $fpid
	[ $arc -eq 0 ] || die "hib-alt failed (rc $arc) in $* $a_rw $a_bs: $(head -c 300 /tmp/alt.err)"
	# fio's own verdict (terse field 5, the first job error), after its signal notice
	ferr=$(grep '^3;' /tmp/fio.alt | head -n 1 | cut -d';' -f5)
	[ "$ferr" = 0 ] || die "fio reported error '${ferr:-no result}' in $* $a_rw $a_bs: $(head -c 300 /tmp/fio.err)"
	out alt "$a_rw" "$a_bs" "$a_nj" "$a_rep" "$(echo "$@" | tr ' ' ,)" $ares
}

bench() {
	reps=$(arg reps 3); runtime=$(arg runtime 4); ramp=$(arg ramp 500ms)
	alt=$(arg alt 1)	# 1: modes of one domain type take turns within one fio run
	case $ramp in	# fio's time syntax, whole numbers: 500ms, 1s, 0
	*ms) rv=${ramp%ms}; ru=1 ;;
	*s) rv=${ramp%s}; ru=1000 ;;
	*) rv=$ramp; ru=1000 ;;
	esac
	case $rv in
	''|*[!0-9]*) die "hib.ramp=$ramp: expected whole ms or s, e.g. 500ms or 1s" ;;
	esac
	ramp_ms=$((rv * ru))
	modes=$(arg modes strict,lazy,passthrough | tr , ' ')
	rws=$(arg rw read,write | tr , ' ')
	bss=$(arg bs 4k,16k,64k,128k | tr , ' ')
	jobs=$(arg jobs 1,2 | tr , ' ')
	qd=$(arg iodepth 64)
	align=$(arg align 0)	# fio's buffers this many bytes into a page (--iomem_align)
	prof=$(arg prof 1)	# seconds of each profiled run after the matrix; 0: none
	lockstat=$(arg lockstat 0)	# 1: the pool's lock statistics of every fio run
	if [ "$lockstat" = 1 ]; then
		[ "$alt" = 0 ] || die "hib.lockstat=1 counts per fio run: it needs hib.alt=0"
		[ -w /proc/lock_stat ] || die "hib.lockstat=1: no /proc/lock_stat (CONFIG_LOCK_STAT)"
		echo 1 > /proc/sys/kernel/lock_stat
		out knob-boot bounce_cpu_slots "$(cat $POOL/bounce_cpu_slots 2>/dev/null || echo none)"
	fi
	# hib.huge=1: fio's buffers in 2 MiB huge pages, so that every block is one
	# physically contiguous segment.  From ordinary pages a 128k block is 1 to 32
	# segments, and as many IOMMU mappings, depending on how the page allocator
	# happened to hand out its pages in that run.
	mem=
	if [ "$(arg huge 1)" = 1 ]; then
		echo 64 > /proc/sys/vm/nr_hugepages
		[ "$(cat /proc/sys/vm/nr_hugepages)" -ge 32 ] ||
			die "cannot reserve huge pages for fio (hib.huge=0 runs without)"
		mem=--mem=shmhuge
	fi
	nmodes=$(echo $modes | wc -w)
	cur=
	stats start	# what the boot left: the first cell's counts start from here
	r=1
	while [ $r -le "$reps" ]; do
		k=0
		for rw in $rws; do for bs in $bss; do for nj in $jobs; do
			# Every cell runs all modes back to back, in an order rotated per
			# cell and repetition, so that drift of the host favours no mode.
			set -- $modes
			i=0
			while [ $i -lt $(( (k + r - 1) % nmodes )) ]; do
				m1=$1; shift; set -- "$@" "$m1"; i=$((i + 1))
			done
			k=$((k + 1))
			done_t=
			for mode in "$@"; do
				t=$(domain_type "$mode")
				# the modes of this domain type, in this cell's order
				grp=
				for m in "$@"; do
					[ "$(domain_type "$m")" = "$t" ] && grp="$grp $m"
				done
				if [ "$alt" = 1 ]; then
					case " $done_t " in *" $t "*) continue ;; esac
					done_t="$done_t $t"
					for m in $grp; do set_mode "$m"; done
					cur=
					alt_cell "$rw" "$bs" "$nj" "$r" $((r * 100 + k)) $grp
					stats "$(echo $grp | tr ' ' ,) $rw $bs $nj $r"
					# the domain of a group without a pool mode is another one
					case " $grp " in *pool*)
						policy "$(echo $grp | tr ' ' ,) $rw $bs $nj $r" "$BDF" ;;
					esac
					continue
				fi
				[ "$mode" = "$cur" ] || set_mode "$mode"
				cur=$mode
				tag="$mode $rw $bs $nj $r"
				[ "$lockstat" = 1 ] && lock_clear "$tag"
				fio_cell "$tag" "$mode" "$rw" "$bs" "$nj" "$runtime"
				[ "$lockstat" = 1 ] && lock_dump "$tag"
				stats "$tag"
				out fio "$tag" "$res"
			done
		done; done; done
		r=$((r + 1))
	done
	# The cost model: the function profiler times iommu_dma_{map,unmap}_{page,sg} in
	# short runs of their own (repetition 0, numjobs 1), so that its overhead never
	# slows the throughput runs above.
	[ "$prof" = 0 ] && return 0
	prof_setup
	ramp=0	# the profile counts every call: so must the GiB it is divided by
	for mode in $modes; do
		[ "$mode" = passthrough ] && continue
		set_mode "$mode"
		for rw in $rws; do for bs in $bss; do
			tag="$mode $rw $bs 1 0"
			prof_start
			fio_cell "$tag" "$mode" "$rw" "$bs" 1 "$prof"
			prof_stop "$tag"
			out pfio "$tag" "$res"
		done; done
	done
	# The pool's own time per call: its entry points alone under the profiler, in runs
	# of their own (profiled inside iommu_dma_*, they would add the profiler's cost to
	# the cost model above).  Where the policy maps, that is what its sampling and
	# decision cost; the policy line after each run says which it did.
	[ "$(arg pprof 1)" = 1 ] || return 0
	echo 'io_buffer_pool_map_page io_buffer_pool_unmap_page io_buffer_pool_map_sg io_buffer_pool_unmap_sg' \
		> $TR/set_ftrace_filter 2>/dev/null || return 0
	ppat=io_buffer_pool_
	if [ "$(arg pprof_copies 0)" = 1 ]; then
		# make scale: the copies between the caller's buffer and a slot and the
		# zeroing of slots too (either may be a .constprop clone), inside the
		# entry points, whose time includes theirs (graph-time)
		for fn in 'iobp_copy_phys*' 'iobp_zero*'; do
			echo "$fn" >> $TR/set_ftrace_filter 2>/dev/null ||
				die "hib.pprof_copies=1: no $fn in available_filter_functions"
		done
		echo 1 > $TR/options/graph-time || die "hib.pprof_copies=1: no graph-time option"
		ppat='io_buffer_pool_|iobp_'
	fi
	# strict too, as the control: there the pool only says at once that it does not
	# bounce, and what its entry points still take is the profiler's own share and
	# what interrupts add inside them
	for mode in $modes; do
		case $mode in *pool*|strict) ;; *) continue ;; esac
		set_mode "$mode"
		for rw in $rws; do for bs in $bss; do
			tag="$mode $rw $bs 1 0"
			prof_start
			fio_cell "$tag" "$mode" "$rw" "$bs" 1 "$prof"
			prof_stop "$tag" pprof "$ppat"
			out ppfio "$tag" "$res"
			policy "pprof:$mode $rw $bs 1 0" "$BDF"
		done; done
	done
}
