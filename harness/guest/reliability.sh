# shellcheck shell=sh
# SPDX-License-Identifier: GPL-2.0-only
#
# Scenario reliability (harness/guest/init): the pool under injected faults, memory
# pressure, teardown and concurrency, and bad knob values; harness/hib/reliability.py
# says what each case must show.

FI=$IOBP
SCALE=$(arg scale 1)	# fio sizes of the reliability run times this (make soak: 8)
RDISK=$(arg rdisk 480)	# MiB of the disk the reliability run may use
ROFF=0
rfio() {	# rfio CASE MIB FIO-ARGS...: a verified fio run on the next MIB MiB of the disk
	c=$1; n=$2; shift 2
	[ $((ROFF + n)) -le "$RDISK" ] || ROFF=0
	fio --name="$c" --filename="$DEV" --direct=1 --ioengine=libaio --offset="${ROFF}M" \
		--size="${n}M" --verify=crc32c --do_verify=1 --verify_fatal=0 --verify_dump=0 \
		--randrepeat=0 --output-format=json "$@" > /tmp/fio.json 2> /tmp/fio.err
	rc=$?
	ROFF=$((ROFF + n))
	out rfio "$c" "rc=$rc" "$(tr -d ' \t\n' < /tmp/fio.json)"
	grep -v '^$' /tmp/fio.err | head -n 50 | while read -r l; do out rfio-err "$c" "$l"; done
}

# The fio job every case runs unless it says otherwise: random writes of every size
# the pool serves (512 B to 128 KiB, all six classes), each block read back and
# checked with crc32c, reads interleaved with the writes (verify_backlog).
rjob() {	# rjob CASE MIB [FIO-ARGS...]
	c=$1; n=$(($2 * SCALE)); shift 2
	rfio "$c" "$n" --rw=randwrite --bsrange=512-128k --iodepth=16 --verify_backlog=64 "$@"
}

churn_start() {	# free every cached slot 20 times a second, so that slots refill all along
	touch /tmp/churn
	( while [ -e /tmp/churn ]; do echo 2 > /proc/sys/vm/drop_caches; sleep 0.05; done ) &
	CHURN=$!
}
churn_stop() { rm -f /tmp/churn; wait $CHURN; }

# Every (100 / PERCENT)th call of the fault point fails (one page allocation per slot
# fill; one IOMMU map per physically contiguous run of a slot's pages): the fault
# attribute's interval makes the rate exact, where a probability of 1% once let a whole
# run pass with no fault injected.  At 1% the run is twice as long, so that a few faults
# land at every scale.
fault_case() {	# fault_case alloc|map PERCENT
	f=$FI/fail_$1
	c=fault-$1-$2
	[ -d $f ] || { out error "no $f: kernel without CONFIG_IOMMU_IO_BUFFER_FAULT_INJECTION"; return; }
	out case "$c"
	echo 3 > /proc/sys/vm/drop_caches
	stats "$c before"
	echo 0 > $f/verbose; echo $((100 / $2)) > $f/interval; echo -1 > $f/times
	echo N > $f/task-filter; echo 100 > $f/probability
	n=24
	[ "$2" -lt 10 ] && n=48
	churn_start
	rjob "$c" $n
	churn_stop
	echo 0 > $f/probability
	leak_stats "$c after"
}

settle() {	# settle: wait (10 s at most) until the pool's counters stand still for 1 s
	cat $STATS > /tmp/settle.a
	for i in 1 2 3 4 5 6 7 8 9 10; do
		sleep 1
		cat $STATS > /tmp/settle.b
		cmp -s /tmp/settle.a /tmp/settle.b && return 0
		mv /tmp/settle.b /tmp/settle.a
	done
}

# The pool's trace events (events/io_buffer_pool) around verified I/O that fills
# slots, a shrink, an eviction of idle slots and injected fill failures: per event the number of lines, and the
# slots the release events name by reason, as "stat trace events ..." lines beside the
# counters (each must match its counter); then one line per event.  The counters are
# read on both sides of each switch of the events ("trace before", "trace on"; "trace
# end", "trace after"): nothing may move in between, or a count could be off with
# nothing wrong.  The trace header's entries in the buffer and written show overruns.
trace_case() {
	ev=$TR/events/io_buffer_pool
	out case trace
	[ -d $ev ] || { out error "no $ev: kernel without the pool's trace events"; return; }
	echo 600000 > $POOL/bounce_idle_ms
	echo 3 > /proc/sys/vm/drop_caches
	echo 0 > $TR/tracing_on
	echo 4096 > $TR/buffer_size_kb
	echo > $TR/trace
	echo 1 > $TR/tracing_on
	settle
	stats "trace before"
	echo 1 > $ev/enable || die "cannot enable $ev"
	stats "trace on"
	rjob trace 2
	echo 3 > /proc/sys/vm/drop_caches
	# slots cached again, then evicted as idle (10 ms idle time, 1 s of it)
	rjob trace-evict 1
	echo 10 > $POOL/bounce_idle_ms
	sleep 1
	echo 600000 > $POOL/bounce_idle_ms
	f=$FI/fail_alloc
	[ -d $f ] || out error "no $f: kernel without CONFIG_IOMMU_IO_BUFFER_FAULT_INJECTION"
	if [ -d $f ]; then
		echo 0 > $f/verbose; echo 2 > $f/interval; echo -1 > $f/times
		echo N > $f/task-filter; echo 100 > $f/probability
		rjob trace-fault 2
		echo 0 > $f/probability
	fi
	stats "trace end"
	echo 0 > $ev/enable
	stats "trace after"
	awk '{
		for (i = 1; i <= NF; i++) {
			if ($i !~ /^iobp_[a-z_]*:$/)
				continue
			e = substr($i, 1, length($i) - 1)
			n[e]++
			if (e == "iobp_slot_release") {
				r = "evicted"
				if ($0 ~ / reason=shrunk/)
					r = "shrunk"
				split($0, a, " nr=")
				split(a[2], b, " ")
				slots[r] += b[1]
			}
			break
		}
	}
	END {
		print "iobp_bounce_map", n["iobp_bounce_map"] + 0
		print "iobp_fallback", n["iobp_fallback"] + 0
		print "iobp_slot_fill", n["iobp_slot_fill"] + 0
		print "iobp_slot_release", n["iobp_slot_release"] + 0
		print "released_evicted", slots["evicted"] + 0
		print "released_shrunk", slots["shrunk"] + 0
	}' $TR/trace > /tmp/trace.sum
	awk '$2 == "entries-in-buffer/entries-written:" {
		split($3, a, "/"); print "entries_in_buffer", a[1]; print "entries_written", a[2]
	}' $TR/trace >> /tmp/trace.sum
	while read -r tk tv; do out stat "trace events" "$tk" "$tv"; done < /tmp/trace.sum
	for e in iobp_bounce_map iobp_fallback iobp_slot_fill iobp_slot_release; do
		l=$(grep -m 1 " $e: " $TR/trace | sed "s/^.* $e: //")
		out trace-line "$e" "$l"
	done
	echo > $TR/trace
	echo 1000 > $POOL/bounce_idle_ms
}

knob() {	# knob NAME VALUE ok|rej EXPECTED-AFTER: a run-time write to a module parameter
	before=$(cat $POOL/$1)
	if printf '%s\n' "$2" > $POOL/$1 2>/dev/null; then rc=0; else rc=1; fi
	out knob "$1" "value=$2" "want=$3" "rc=$rc" "before=$before" "after=$(cat $POOL/$1)" \
		"expect=$4"
}

gknob() {	# gknob VALUE ok|rej [EXPECTED-AFTER]: a write to the NVMe group's bounce file
	gf=/sys/kernel/iommu_groups/$GRP/bounce
	before=$(cat $gf)
	if printf '%s\n' "$1" > $gf 2>/dev/null; then rc=0; else rc=1; fi
	out knob group-bounce "value=$1" "want=$2" "rc=$rc" "before=$before" "after=$(cat $gf)" \
		"expect=${3:-$before}"
}

knobs_boot() {	# the values the boot command line left; the log says which were refused
	for k in bounce bounce_threshold bounce_slots bounce_classes bounce_idle_ms; do
		out knob-boot "$k" "$(cat $POOL/$k)"
	done
	dmesg | grep -i "rejected\|invalid for parameter" | while read -r l; do out knob-log "$l"; done
}

knobs() {
	out case bad-input
	t0=$(cat $POOL/bounce_threshold); i0=$(cat $POOL/bounce_idle_ms)
	b0=$(cat $POOL/bounce)
	knob bounce maybe rej "$b0"
	knob bounce 2 rej "$b0"
	knob bounce '' rej "$b0"
	knob bounce 0 ok off
	knob bounce auto ok auto
	knob bounce 1 ok on
	gknob maybe rej
	gknob '' rej
	gknob 'on off' rej
	gknob off ok off
	gknob default ok on
	gknob 0 ok off
	gknob on ok on
	gknob default ok on
	knob bounce_threshold garbage rej "$t0"
	knob bounce_threshold -1 rej "$t0"
	knob bounce_threshold 4294967296 rej "$t0"
	knob bounce_threshold 99999999999999999999 rej "$t0"
	knob bounce_threshold 524289 rej "$t0"
	knob bounce_threshold 0x80000 ok 524288
	knob bounce_threshold 0 ok 0
	knob bounce_threshold 1 ok 1
	knob bounce_threshold auto ok auto
	knob bounce_threshold 4096 ok 4096
	knob bounce_threshold "$t0" ok "$t0"
	knob bounce_idle_ms 0 rej "$i0"
	knob bounce_idle_ms 9 rej "$i0"
	knob bounce_idle_ms 600001 rej "$i0"
	knob bounce_idle_ms 4294967306 rej "$i0"
	knob bounce_idle_ms 12abc rej "$i0"
	knob bounce_idle_ms 10 ok 10
	knob bounce_idle_ms 600000 ok 600000
	knob bounce_idle_ms "$i0" ok "$i0"
	s0=$(cat $POOL/bounce_slots); c0=$(cat $POOL/bounce_classes)
	knob bounce_slots 1 rej "$s0"
	knob bounce_classes 1 rej "$c0"
	# the pool still serves I/O after all of that
	rjob after-bad-input 4
}

counter() { sed -n "s/^$1 //p" $STATS; }

zone() {	# free, min and low watermark (KiB) of the largest memory zone
	awk '$1 == "Node" { z = $4 } $1 == "pages" && $2 == "free" { f[z] = $3 }
		$1 == "min" { mn[z] = $2 } $1 == "low" { lo[z] = $2 }
		$1 == "managed" && $2 > best { best = $2; bz = z }
		END { print f[bz] * 4, mn[bz] * 4, lo[bz] * 4 }' /proc/zoneinfo
}

# Real memory pressure: fill a tmpfs (which nothing can reclaim: there is no swap) until
# the largest zone's free memory is under its low watermark, so that kswapd reclaims and
# reaches the pool's shrinker.  Stop at the first slot it frees, or a quarter of the way
# from the low to the min watermark: allocations never fail, the OOM killer never wakes.
hog_case() {
	out case memory-hog
	# No watermark boost while the hog is in: a fragmentation event raises every
	# watermark by up to 1.5% of memory at once, and with nothing reclaimable but the
	# pool the zone is then below its raised min and the OOM killer runs (2026-12-01)
	bf=$(cat /proc/sys/vm/watermark_boost_factor)
	echo 0 > /proc/sys/vm/watermark_boost_factor
	echo 600000 > $POOL/bounce_idle_ms
	stats "memory-hog before"
	rjob memory-hog 8
	stats "memory-hog busy"
	set -- $(zone)
	stop=$(($3 - ($3 - $2) / 4))
	mkdir -p /hog
	mount -t tmpfs -o size=100% hog /hog || die "cannot mount the hog tmpfs"
	s0=$(counter slots_shrunk)
	i=0
	while [ "$(counter slots_shrunk)" = "$s0" ] && [ $i -lt 1000 ]; do
		set -- $(zone)
		kb=$(( ($1 - stop) / 2 / 64 * 64 ))	# half the way, in 64 KiB blocks
		[ $kb -ge 64 ] || break
		[ $kb -le 16384 ] || kb=16384
		dd if=/dev/zero of=/hog/f$i bs=64k count=$((kb / 64)) 2>/dev/null
		i=$((i + 1))
	done
	# kswapd, once woken, works until the zone is back above its high watermark:
	# give it up to 10 s with the hog in place
	w=0
	while [ "$(counter slots_shrunk)" = "$s0" ] && [ $w -lt 100 ]; do
		sleep 0.1
		w=$((w + 1))
	done
	sleep 1
	set -- $(zone)
	out hog "steps=$i free_kb=$1 min_kb=$2 low_kb=$3 stop_kb=$stop" \
		"hog_kb=$(du -sk /hog | cut -f1)"
	stats "memory-hog pressed"
	rm -f /hog/f*
	umount /hog
	echo "$bf" > /proc/sys/vm/watermark_boost_factor
	echo 1000 > $POOL/bounce_idle_ms
	rjob memory-hog-after 8
	leak_stats "memory-hog after"
}

load_start() {	# load_start SECONDS: unverified fio load in the background (pid $load)
	b0=$(counter bounced)
	fio --name=load --filename="$DEV" --direct=1 --ioengine=libaio --rw=randrw \
		--bsrange=512-128k --iodepth=16 --time_based --runtime="$1" \
		--output-format=terse > /dev/null 2> /tmp/load.err &
	load=$!
	# return once the load goes through the pool (or after 30 s; the case then fails)
	i=0
	while [ "$(counter bounced)" = "$b0" ] && [ $i -lt 300 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	sleep 1
	out load "waited=$((i / 10))s" "bounced=$(($(counter bounced) - b0))" \
		"err=$(tr '\n' ' ' < /tmp/load.err | head -c 200)"
}

monitor() {	# monitor WHAT: ask the host to run a QEMU monitor command, wait for it
	out ask "$1"
	i=0
	while [ $i -lt 600 ]; do
		case $1 in
		unplug) [ -e /sys/bus/pci/devices/$BDF ] || return 0 ;;
		plug) [ -e /sys/bus/pci/devices/$BDF ] && return 0 ;;
		esac
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

reliability() {
	knobs_boot
	echo 4 > /proc/sys/vm/drop_caches	# quiet: the cases below drop caches often
	set_mode pool
	echo 131072 > $POOL/bounce_threshold || die "cannot set iommu.bounce_threshold"
	knobs
	for kind in alloc map; do
		for pct in 1 10 100; do fault_case $kind $pct; done
	done

	out case idle
	echo 100 > $POOL/bounce_idle_ms
	stats "idle before"
	rjob idle 8
	stats "idle busy"
	sleep 2
	leak_stats "idle after"

	out case shrinker
	echo 600000 > $POOL/bounce_idle_ms
	stats "shrinker before"
	rjob shrinker 8
	stats "shrinker busy"
	echo 3 > /proc/sys/vm/drop_caches
	leak_stats "shrinker after"
	echo 1000 > $POOL/bounce_idle_ms

	hog_case
	trace_case

	out case concurrent
	stats "concurrent before"
	# four jobs, each on its own quarter of the range (a job verifies what it wrote)
	n=$((4 * SCALE))
	rfio concurrent $((4 * n)) --rw=randwrite --bsrange=512-128k --iodepth=8 --numjobs=4 \
		--size="${n}M" --offset_increment="${n}M" --verify_backlog=32
	leak_stats "concurrent after"

	# CPU 1 goes offline with slots in its per-CPU caches: they go to the class lists
	# (its hotplug callback), none is freed or lost, and verified I/O runs on CPU 0.
	out case cpu-offline
	echo 600000 > $POOL/bounce_idle_ms
	n=$((4 * SCALE))
	rfio cpu-offline-fill $((2 * n)) --rw=randwrite --bsrange=512-128k --iodepth=16 \
		--numjobs=2 --size="${n}M" --offset_increment="${n}M" --verify_backlog=64
	cpu_stats "cpu-offline before"
	echo 0 > /sys/devices/system/cpu/cpu1/online || die "cannot take cpu1 offline"
	cpu_stats "cpu-offline down"
	rjob cpu-offline 8
	echo 1 > /sys/devices/system/cpu/cpu1/online || die "cannot bring cpu1 back"
	leak_stats "cpu-offline after"
	echo 1000 > $POOL/bounce_idle_ms

	out case unbind
	stats "unbind before"
	load_start 30
	echo "$BDF" > /sys/bus/pci/drivers/nvme/unbind || die "unbind $BDF failed"
	wait $load
	leak_stats "unbind unbound"
	echo "$BDF" > /sys/bus/pci/drivers/nvme/bind || die "bind $BDF failed"
	blockdev_wait || die "no namespace after rebinding $BDF"
	rjob unbind 8
	leak_stats "unbind after"

	out case hotplug
	stats "hotplug before"
	p0=$(sed -n 's/^pools //p' $STATS)
	load_start 60
	monitor unplug || die "$BDF still there 60 s after device_del"
	wait $load
	# the device leaves sysfs before the IOMMU core releases it (a bus notifier
	# after device_del()), and its domain and pool go then: wait for that, 10 s
	# at most (make check once read the count before the release)
	i=0
	while [ "$(sed -n 's/^pools //p' $STATS)" = "$p0" ] && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	leak_stats "hotplug unplugged"
	monitor plug || die "$BDF not back 60 s after device_add"
	blockdev_wait || die "no namespace after re-plugging $BDF"
	g=$(basename "$(readlink /sys/bus/pci/devices/$BDF/iommu_group)")
	out hotplug-group "$g" "type=$(cat /sys/kernel/iommu_groups/$g/type)"
	rjob hotplug 8
	leak_stats "hotplug after"

	leak_checks
}
