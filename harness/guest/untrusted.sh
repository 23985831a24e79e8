# shellcheck shell=sh
# SPDX-License-Identifier: GPL-2.0-only
#
# Scenario untrusted (harness/guest/init): the NVMe device made untrusted, its pool
# against swiotlb.

# The untrusted device's counters after TAG: the untrusted pools' ones (debugfs
# io_buffer_pool/untrusted), swiotlb's bounces as its tracepoint saw them and its
# high-water mark of slots in use.
UFILE=$IOBP/untrusted
ustats() {	# ustats TAG
	[ -r $UFILE ] && while read -r sk sv; do out stat "$1" "$sk" "$sv"; done < $UFILE
	out stat "$1" swiotlb_traced "$(grep -c swiotlb_bounced $TR/trace)"
	# events the trace buffer lost: a count of them would be short
	ov=0
	for c in $TR/per_cpu/cpu*/stats; do
		ov=$((ov + $(sed -n 's/^overrun: //p' $c)))
	done
	out stat "$1" trace_overrun "$ov"
	out stat "$1" swiotlb_hiwater "$(cat /sys/kernel/debug/swiotlb/io_tlb_used_hiwater)"
}

untrusted() {
	port=$(readlink -f /sys/bus/pci/devices/$BDF/..)
	# (the kernel's messages about the SSDT and the pool: check.py reads the console)
	out untrusted-dev "port=$(cat $port/firmware_node/path 2>/dev/null || echo none)" \
		"removable=$(cat /sys/bus/pci/devices/$BDF/removable)" \
		"type=$(cat /sys/kernel/iommu_groups/$GRP/type)" \
		"bounce=$(cat /sys/kernel/iommu_groups/$GRP/bounce 2>/dev/null || echo none)" \
		"bdf=$BDF"
	blockdev_wait || die "no namespace for $BDF"
	# hib.huge=1: fio's buffers in huge pages, every block one physically contiguous
	# segment at the offset hib.align puts it (the debug kernel has no hugetlbfs: its
	# blocks are a segment per page, or fewer where pages happen to be contiguous)
	mem=
	if [ "$(arg huge 0)" = 1 ]; then
		echo 64 > /proc/sys/vm/nr_hugepages
		[ "$(cat /proc/sys/vm/nr_hugepages)" -ge 32 ] || die "cannot reserve huge pages for fio"
		mem=--mem=shmhuge
	fi
	echo 8192 > $TR/buffer_size_kb
	echo 1 > $TR/events/swiotlb/swiotlb_bounced/enable || die "no swiotlb_bounced tracepoint"
	mib=$(arg mib 2)
	off=0
	for mode in $(arg modes pool,swiotlb | tr , ' '); do
		case $mode in
		pool) g=default; bss=$(arg bs 512,3584,4096,16896,65536,131072) ;;
		swiotlb) g=off; bss=$(arg swiotlb_bs 512,16896) ;;
		*) die "untrusted: unknown mode $mode" ;;
		esac
		echo $g > /sys/kernel/iommu_groups/$GRP/bounce || die "cannot set the group's bounce to $g"
		for bs in $(echo $bss | tr , ' '); do for al in $(arg align 0,512 | tr , ' '); do
			echo > $TR/trace
			echo 0 > /sys/kernel/debug/swiotlb/io_tlb_used_hiwater
			ustats "u $mode $bs $al before"
			res=$(fio --name="u$bs" --filename="$DEV" --direct=1 --ioengine=libaio \
				--iodepth=16 --rw=randwrite --bs="$bs" --iomem_align="$al" \
				$mem --offset="${off}M" --size="${mib}M" \
				--verify=crc32c --do_verify=1 --verify_fatal=1 --verify_dump=0 \
				--randrepeat=0 --output-format=terse --terse-version=3 2>/tmp/fio.err)
			rc=$?
			ustats "u $mode $bs $al after"
			out verify "u-$mode" "$bs@$al" "rc=$rc" "$res"
			[ $rc -eq 0 ] || out verify-error "u-$mode" "$bs@$al" \
				"$(tr '\n' ' ' < /tmp/fio.err | head -c 400)"
			off=$((off + mib))
		done; done
	done
	echo 0 > $TR/events/swiotlb/swiotlb_bounced/enable
	ranges "u after"
	echo default > /sys/kernel/iommu_groups/$GRP/bounce
	leak_checks
}
