# shellcheck shell=sh
# SPDX-License-Identifier: GPL-2.0-only
#
# Scenario verify (harness/guest/init): fio --verify=crc32c in each mode, then the
# leak checks; see init.

verify() {
	edu_checks
	bss=$(arg bs 512,4096,16384,65536,131072,mix | tr , ' ')
	mib=$(arg mib 8)
	qd=$(arg iodepth 16)
	off=0
	for mode in $(arg modes strict | tr , ' '); do
	set_mode "$mode"
	stats "$mode before"
	pool_stats "$mode before pool" "$BDF"
	for bs in $bss; do
		if [ "$bs" = mix ]; then size="--bsrange=512-128k"; else size="--bs=$bs"; fi
		n=$mib
		[ "$bs" = 512 ] && n=$(( (mib + 3) / 4 ))
		res=$(fio --name="v$bs" --filename="$DEV" --direct=1 --ioengine=libaio \
			--iodepth="$qd" --rw=randwrite $size --offset="${off}M" --size="${n}M" \
			--verify=crc32c --do_verify=1 --verify_fatal=1 --verify_dump=0 \
			--randrepeat=0 --output-format=terse --terse-version=3 2>/tmp/fio.err)
		rc=$?
		out verify "$mode" "$bs" "rc=$rc" "$res"
		[ $rc -eq 0 ] || out verify-error "$mode" "$bs" "$(tr '\n' ' ' < /tmp/fio.err | head -c 400)"
		off=$((off + n))
	done
	stats "$mode after"
	pool_stats "$mode after pool" "$BDF"
	ranges "$mode after"
	done
	leak_checks
}
