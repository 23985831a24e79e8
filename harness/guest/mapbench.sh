# shellcheck shell=sh
# SPDX-License-Identifier: GPL-2.0-only
#
# Scenario mapbench (harness/guest/init): map+unmap alone through the edu device.

# The map+unmap microbenchmark, no I/O in flight: edu_dma.ko maps and unmaps one
# buffer of hib.pages pages, both directions, in each of hib.modes.  A repetition of a
# size and direction is hib.turns turns of hib.calls pairs per mode, the modes in an
# order rotated per turn, so that the host's drift, which moves the cost of a pair by
# several percent within seconds, is common to all modes; per mode the line gives the
# mean over its turns.  Repetition 0 warms up the pool and the policy and is reported,
# to be left out.
mapbench() {
	edu_load || die "mapbench needs QEMU's edu device and edu_dma.ko"
	reps=$(arg reps 8); calls=$(arg calls 2000); turns=$(arg turns 10)
	modes=$(arg modes strict,pool-auto,pool-all | tr , ' ')
	nmodes=$(echo $modes | wc -w)
	r=0
	while [ $r -le "$reps" ]; do
		for p in $(arg pages 1,2,4,8,16,32 | tr , ' '); do for d in 0 1; do
			for m in $modes; do eval "sum_$(echo $m | tr - _)=0"; done
			k=0
			while [ $k -lt "$turns" ]; do
				set -- $modes
				i=0
				while [ $i -lt $(( (r + p + d + k) % nmodes )) ]; do
					m1=$1; shift; set -- "$@" "$m1"; i=$((i + 1))
				done
				for m in "$@"; do
					knobs_set "$m"
					echo "$p $d $calls" > /sys/module/edu_dma/parameters/bench ||
						die "edu_dma bench $p $d $calls failed in mode $m"
					v=$(echo $m | tr - _)
					eval "sum_$v=\$((sum_$v + $(cat /sys/module/edu_dma/parameters/bench_ns)))"
				done
				k=$((k + 1))
			done
			for m in $modes; do
				eval "t=\$((sum_$(echo $m | tr - _) / turns))"
				out mapbench $r $p $d $m $t
			done
		done; done
		# hib.policy0=1: the policy's state after the warm-up too (make check's
		# lean policy boot: the path not taken must be explored after it)
		[ "$r" -eq 0 ] && [ "$(arg policy0 0)" = 1 ] && policy "mapbench x 0 1 0" "$e"
		r=$((r + 1))
	done
	policy "mapbench x 0 1 $reps" "$e"
}
