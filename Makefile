# SPDX-License-Identifier: GPL-2.0-only
# io-buffer-pool harness.  `make bench` (the main job) and `make check` (all tests)
# install what they need; `make aa` and `make regimes` are the bench's companions.
PY := /usr/bin/python3

.PHONY: all bench scale aa regimes mapbench hostnoise check soak unit series deps prepare kernels clean
all: check

deps:
	@harness/deps.sh

prepare: deps
	harness/kernel.sh prepare

build/initramfs.cpio: harness/guest/init $(wildcard harness/guest/*.sh) harness/guest/alt.c \
		harness/mkinitramfs.sh
	@$(MAKE) -s deps
	@mkdir -p build
	harness/mkinitramfs.sh $@

# The SSDT that makes the guest's root port 00:04.0 external-facing, as an uncompressed
# cpio the kernel's ACPI table upgrade reads from the front of the initramfs.
build/acpi-untrusted.cpio: harness/acpi/extport.asl
	@$(MAKE) -s deps
	@rm -rf build/acpi && mkdir -p build/acpi/kernel/firmware/acpi
	iasl -p build/acpi/kernel/firmware/acpi/extport harness/acpi/extport.asl >/dev/null
	cd build/acpi && find kernel | LC_ALL=C sort | cpio -o -H newc --quiet > ../acpi-untrusted.cpio

# About 30 min of guest time, and 7 min before it for the untrusted regime (an NVMe
# device behind an external-facing port: swiotlb against the pool, rows in
# results/regimes.json; UNTRUSTED=0 leaves it out, and its failure does not keep the
# main bench from running, only makes the target fail at the end), and after it make
# scale (below, 7 min more and a lockstat kernel build the first time; SCALE=0 leaves it
# out, its failure too only makes the target fail).
# Knobs: BENCH_ARGS="--reps 5 --runtime 4 --modes strict,pool --bs 4k",
# UNTRUSTED_ARGS="--reps 8 --offsets 512", SCALE_ARGS (below).
UNTRUSTED ?= 1
SCALE ?= 1
bench: prepare
	harness/kernel.sh build bench
	$(MAKE) build/initramfs.cpio build/acpi-untrusted.cpio
	@rc=0; \
	if [ "$(UNTRUSTED)" = 1 ]; then $(PY) harness/untrusted_bench.py $(UNTRUSTED_ARGS) || rc=$$?; fi; \
	$(PY) harness/bench.py $(BENCH_ARGS) || exit $$?; \
	[ $$rc = 0 ] || echo "bench: the untrusted regime FAILED (see above)" >&2; \
	if [ "$(SCALE)" = 1 ]; then \
		{ harness/kernel.sh build lockstat && $(PY) harness/scale.py $(SCALE_ARGS); } || \
		{ echo "bench: make scale FAILED (see above)" >&2; rc=1; }; \
	fi; exit $$rc

# Issue 14, the pool with 4 vCPUs (results/scale.json and scale.md), about 9 min of guest
# time: a boot of the bench kernel with -smp 4 (strict and pool taking turns, read and
# write 4k with 1 and 4 jobs: each mode's scaling 1 -> 4; then a 4k read's cost per
# mapping under the function profiler: the pool's map, unmap, copies and zeroing), and
# two of the lockstat kernel (bench + CONFIG_LOCK_STAT) with -smp 4 and 4 jobs, without
# (iommu.bounce_cpu_slots=0) and with the per-CPU slot caches: the pool's lock
# contentions per 1000 bounces.  The first run builds the lockstat kernel (a full build).
# SCALE_ARGS="--reps 8 --lock-runtime 8"; --from-log rebuilds the report from the logs.
scale: prepare
	harness/kernel.sh build bench
	harness/kernel.sh build lockstat
	$(MAKE) build/initramfs.cpio
	$(PY) harness/scale.py $(SCALE_ARGS)

# The A/A run: strict against itself, taking turns as strict and pool do in the bench:
# the noise floor of the bench's within-run ratios, results/aa.json and aa.md, in about
# 23 min.
aa: prepare
	harness/kernel.sh build bench
	$(MAKE) build/initramfs.cpio
	$(PY) harness/bench.py --aa $(AA_ARGS)

# The five IOMMU cost regimes (virtio-iommu strict/lazy, VT-d caching mode, VT-d
# strict/lazy): results/regimes.json and .md, about 37 min of guest time.
# REGIMES_ARGS="--reps 8 --regimes vtd-strict,vtd-lazy"
regimes: prepare
	harness/kernel.sh build bench
	$(MAKE) build/initramfs.cpio
	$(PY) harness/regimes.py $(REGIMES_ARGS)

# map+unmap alone, no I/O in flight: strict, pool-auto and pool-all through QEMU's edu
# device, 1 to 32 pages, both directions (results/mapbench.json and .md), a few minutes.
# MAPBENCH_ARGS="--reps 10 --calls 4000"
mapbench: prepare
	harness/kernel.sh build bench
	harness/kernel.sh modules bench
	$(MAKE) build/initramfs.cpio
	$(PY) harness/mapbench.py $(MAPBENCH_ARGS)

# The host's own noise: a busy loop for 120 s, and the A/A spread it implies for modes
# measured one after the other and taking turns (results/hostnoise.json).  Run it alone.
hostnoise:
	$(PY) harness/hostnoise.py $(HOSTNOISE_ARGS)

check: deps
	$(PY) harness/check.py $(CHECK_ARGS)

# The series as it would be posted, under build/series/: b4 prep and b4 send -o (writes
# mail files, sends nothing), the cover letter carrying results/'s tables and the
# recipients scripts/get_maintainer.pl names; about 2 min (a worktree of the tree).
series: prepare
	$(PY) harness/series.py $(SERIES_ARGS)

# The reliability run alone, every fio size 8 times (CHECK_ARGS="--scale 16" for more):
# results/reliability-soak.json and .md.
soak: deps
	$(PY) harness/check.py --soak $(CHECK_ARGS)

unit:
	$(PY) harness/check.py --unit-only

kernels: prepare
	harness/kernel.sh build bench
	harness/kernel.sh build test

clean:
	rm -rf build/obj-* build/logs build/initramfs.cpio build/disk.img
