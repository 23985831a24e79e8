# SPDX-License-Identifier: GPL-2.0-only
"""The untrusted device: what make check asserts about the guest's "untrusted" scenario.

The guest (harness/guest/untrusted.sh, untrusted()) runs its NVMe device behind a root port that
an SSDT calls external-facing, so that the kernel itself marks the device untrusted.
It reports:
  HIB untrusted-dev port=PATH removable=R type=T bounce=B bdf=BDF
  HIB verify u-MODE BS@ALIGN rc=N TERSE   (fio --verify=crc32c, BS bytes, buffers ALIGN
                                          bytes into a page; MODE pool or swiotlb)
  HIB stat u MODE BS ALIGN before|after NAME VALUE   (debugfs io_buffer_pool/untrusted,
                                          plus swiotlb_traced, trace_overrun,
                                          swiotlb_hiwater: reset before each run)

fio --iomem_align=ALIGN places its first buffer ALIGN bytes into a page and buffer i at
ALIGN + i * bs after it: with a block size that is not a multiple of 4 KiB the buffers
cycle through offsets, so "ALIGN" is the offset of every block only where bs is.
"""
from . import guest

PORT_PATH = '\\_SB_.PCI0.S20_'   # the root port the SSDT names (harness/acpi/extport.asl)
# make check's runs (check.py passes them to the guest): pool over every size and offset,
# swiotlb over two; at most 2 mappings per block in flight at iodepth 16
CHECK_BS = (512, 3584, 4096, 16896, 65536, 131072)
CHECK_SWIOTLB_BS = (512, 16896)
CHECK_ALIGN = (0, 512)
CHECK_IODEPTH = 16
CHECK_MIB = 2                    # MiB written and verified per run
SSDT_LOG = 'ACPI: Table Upgrade: install [SSDT-'
PROTECT_LOG = 'untrusted device: its DMA domain bounces for protection only'
PAGE = 4096
LARGEST_CLASS = 128 << 10        # iommu.bounce_classes=0x3f: 4 KiB to 128 KiB


def must_bounce(bs, align):
    """Whether dma-iommu must bounce a block of bs bytes at offset align into a page: it
    does not fill its 4 KiB granules."""
    return bool((bs | align) % PAGE)


def pool_holds(bs, align):
    """Whether a class of the pool holds any segment of such a block (its offset in
    the granule kept): only a block that is one physically contiguous segment can
    be too big."""
    return align % PAGE + bs <= LARGEST_CLASS


def delta(out, tag, name):
    """A counter's change over one fio run of the untrusted scenario."""
    b = out.stats.get(tag + ' before', {})
    a = out.stats.get(tag + ' after', {})
    if name not in a or name not in b:
        return None
    return a[name] - b[name]


def expected_runs():
    """The (mode, bs, align) of every run make check asks the guest for."""
    return [('pool', bs, al) for bs in CHECK_BS for al in CHECK_ALIGN] + \
        [('swiotlb', bs, al) for bs in CHECK_SWIOTLB_BS for al in CHECK_ALIGN]


def guest_args():
    """The kernel command line that asks the guest for expected_runs()."""
    return ('hib.scenario=untrusted hib.modes=pool,swiotlb hib.bs=%s hib.swiotlb_bs=%s '
            'hib.align=%s hib.mib=%d'
            % (','.join(map(str, CHECK_BS)), ','.join(map(str, CHECK_SWIOTLB_BS)),
               ','.join(map(str, CHECK_ALIGN)), CHECK_MIB))


def disk_mib():
    """The disk the runs need: each writes CHECK_MIB MiB of its own."""
    return len(expected_runs()) * CHECK_MIB + 8


# the pool's other reasons to leave a mapping to swiotlb: none should occur here (a
# class of 128 slots at iodepth 16, memory to spare, a 64-bit DMA mask, no fault
# injection), and a failure must say which it was
OTHER_FALLBACKS = ('fallback_class_full', 'fallback_no_memory', 'fallback_map_failed',
                   'fallback_dma_mask', 'fallback_sg_layout', 'fallback_device_memory')
COUNTERS = ('untrusted_bounced', 'untrusted_swiotlb', 'bounced', 'policy_mapped',
            'fallback_too_big', 'fallback_off', 'fallback_class_setup', 'swiotlb_traced',
            'trace_overrun', 'swiotlb_hiwater') + OTHER_FALLBACKS


def run_verdict(mode, bs, align, ios, d):
    """(what, ok) for one fio run's counter changes d (COUNTERS), ios its I/Os."""
    # no cost bouncing in an untrusted domain, and a trace that lost nothing
    sane = d['bounced'] == d['untrusted_bounced'] and d['policy_mapped'] == 0 \
        and d['trace_overrun'] == 0 and not any(d[k] for k in OTHER_FALLBACKS)
    # a class is set up by a worker on its first mapping: until then its mappings
    # are swiotlb's, at most those in flight (2 segments per block at iodepth 16)
    setup_ok = d['fallback_class_setup'] <= 2 * CHECK_IODEPTH
    if not must_bounce(bs, align):
        return ('granule-aligned: mapped, bounced by no one',
                sane and d['untrusted_bounced'] == 0 and d['untrusted_swiotlb'] == 0
                and d['swiotlb_traced'] == 0)
    if mode == 'swiotlb':
        return ('the pool off: swiotlb bounced every block (%d traced, %d slots at most in '
                'use), the pool none' % (d['swiotlb_traced'], d['swiotlb_hiwater']),
                sane and d['untrusted_bounced'] == 0 and d['untrusted_swiotlb'] >= ios
                and d['fallback_off'] == d['untrusted_swiotlb'] == d['swiotlb_traced']
                and d['swiotlb_hiwater'] > 0)
    if pool_holds(bs, align):
        return ('the pool bounced every block (%d mappings), swiotlb only %d while a class '
                'was set up' % (d['untrusted_bounced'], d['untrusted_swiotlb']),
                sane and setup_ok and d['untrusted_bounced'] > 0
                and d['untrusted_bounced'] + d['untrusted_swiotlb'] >= ios
                and d['untrusted_swiotlb'] == d['fallback_class_setup'] == d['swiotlb_traced'])
    # one segment: too big for a class, swiotlb's; split: the pool's
    return ('what a class holds the pool bounced (%d), the rest swiotlb (%d: too big or '
            'while a class was set up, traced alike)'
            % (d['untrusted_bounced'], d['untrusted_swiotlb']),
            sane and setup_ok and d['fallback_too_big'] <= ios
            and d['untrusted_bounced'] + d['untrusted_swiotlb'] >= ios
            and d['fallback_too_big'] + d['fallback_class_setup']
            == d['untrusted_swiotlb'] == d['swiotlb_traced'])


def verdicts(out, console=''):
    """[(name, ok, why)] for make check: the device is untrusted the way firmware makes
    it (the console has the kernel's messages), every run of expected_runs() verified
    its data, and the counters show who bounced (run_verdict())."""
    dev = out.untrusted_dev
    v = [('untrusted: the kernel installed the SSDT from the initramfs',
          SSDT_LOG in console, 'no %r on the console' % SSDT_LOG),
         ('untrusted: the NVMe device sits below %s, removable (external-facing port)'
          % PORT_PATH, dev.get('port') == PORT_PATH and dev.get('removable') == 'removable',
          str(dev)),
         ('untrusted: its domain is forced to strict DMA (type %s), with a pool for '
          'protection only (%s)' % (dev.get('type'), dev.get('bounce')),
          dev.get('type') == 'DMA' and dev.get('bounce') == 'on'
          and '%s: %s' % (dev.get('bdf'), PROTECT_LOG) in console, str(dev))]
    runs = {}
    for m, key, rc, fio in out.verify:
        if m.startswith('u-') and '@' in key:
            bs, align = key.split('@')
            runs[(m[2:], guest.bs_bytes(bs), int(align))] = (m, key, rc, fio)
    missing = [r for r in expected_runs() if r not in runs]
    v.append(('untrusted: every fio verify run asked for reported (%d)' % len(runs),
              not missing, 'missing %s' % missing))
    for (mode, bs, align), (m, key, rc, fio) in sorted(runs.items()):
        tag = 'u %s %s %s' % (mode, key.split('@')[0], key.split('@')[1])
        name = 'untrusted %s: fio verify bs=%d at offset %d' % (mode, bs, align)
        ok = rc == 0 and fio is not None and fio.error == 0 and fio.write_kib > 0 \
            and fio.read_kib >= fio.write_kib
        v.append(('%s (wrote %d KiB, read back and checked %d KiB)'
                  % (name, fio.write_kib if fio else 0, fio.read_kib if fio else 0), ok,
                  out.verify_errors.get((m, key), 'rc=%d' % rc)))
        # KiB rounded down: never more I/Os than fio did
        ios = int((fio.write_kib + fio.read_kib) * 1024 // bs) if fio else 0
        d = {k: delta(out, tag, k) for k in COUNTERS}
        if None in d.values():
            v.append((name + ': counters', False, 'missing stat lines for %r' % tag))
            continue
        what, want = run_verdict(mode, bs, align, ios, d)
        v.append(('%s: %s' % (name, what), want, '%d I/Os, counter changes %s' % (ios, d)))
    return v


# make bench's untrusted regime (harness/untrusted_bench.py): per buffer offset one boot
# of the lean kernel, modes swiotlb (the pool off: today's path) and pool taking turns.
BENCH_MODES = ('swiotlb', 'pool')
# within the noise: an A/A run's ratios stay within this of 1 (results/aa.md)
NOISE = 0.03


def cell_counts(stats):
    """{(rw, bs, numjobs, rep): {counter: change}} over each alternating run of a boot,
    from its "HIB stat" lines in order (tag "MODE,MODE RW BS NJ REP"), the first from
    the counters the boot left (tag "start")."""
    out, prev = {}, {}
    for tag, vals in stats.items():
        f = tag.split()
        # the modes in the order that cell ran them
        if tag == 'start':
            prev = vals
            continue
        if len(f) != 5 or sorted(f[0].split(',')) != sorted(BENCH_MODES):
            continue
        key = (f[1], guest.bs_bytes(f[2]), int(f[3]), int(f[4]))
        out[key] = {k: v - prev.get(k, 0) for k, v in vals.items()}
        prev = vals
    return out


def bench_rows(cells, counts, align, paired):
    """The regimes.json rows of one offset's boot: per cell, swiotlb and pool, with the
    pool's paired ratio to swiotlb; "bounced" by the rule dma-iommu bounces by, checked
    against the counters (pool_mappings, swiotlb_mappings: over the cell's runs, both
    modes' turns); "ok": pool faster than swiotlb (interval above 1) where it bounces,
    within NOISE of 1 (median) elsewhere."""
    rows = []
    r4 = (lambda v: None if v is None else round(v, 4))
    for key in sorted(cells, key=lambda k: (k[1], k[2], k[3], BENCH_MODES.index(k[0])
                                            if k[0] in BENCH_MODES else 9)):
        mode, rw, bs, nj = key
        if mode not in BENCH_MODES:
            continue
        p = paired.get(key) if mode == 'pool' else None
        cn = [c for (crw, cbs, cnj, _), c in counts.items() if (crw, cbs, cnj) == (rw, bs, nj)]
        row = {'regime': 'untrusted', 'mode': mode, 'rw': rw, 'bs': bs, 'offset': align,
               'numjobs': nj, 'bounced': must_bounce(bs, align),
               'iops': round(cells[key]['median']['iops']),
               'ratio_to_swiotlb': 1.0 if mode == 'swiotlb' else r4(p and p['median']),
               'ci_low': 1.0 if mode == 'swiotlb' else r4(p and p['low']),
               'ci_high': 1.0 if mode == 'swiotlb' else r4(p and p['high']),
               'pairs': len(cells[key]['reps']) if mode == 'swiotlb' else (p and p['n']),
               'pool_mappings': sum(c.get('untrusted_bounced', 0) for c in cn),
               'swiotlb_mappings': sum(c.get('untrusted_swiotlb', 0) for c in cn)}
        if mode == 'pool':
            med, lo = row['ratio_to_swiotlb'], row['ci_low']
            row['ok'] = (lo is not None and lo > 1) if row['bounced'] else \
                (med is not None and abs(med - 1) <= NOISE)
        rows.append(row)
    return rows


def bench_problems(rows):
    """Why the rows do not show the device bounced as the rule says; []."""
    msgs = []
    for r in rows:
        if r['mode'] != 'pool':
            continue
        where = '%s %s at offset %d' % (r['rw'], r['bs'], r['offset'])
        if r['bounced'] and not (r['pool_mappings'] > 0 and r['swiotlb_mappings'] > 0):
            msgs.append('%s must bounce, but the pool bounced %d and swiotlb %d mappings'
                        % (where, r['pool_mappings'], r['swiotlb_mappings']))
        if not r['bounced'] and (r['pool_mappings'] or r['swiotlb_mappings']):
            msgs.append('%s is granule-aligned, but the pool bounced %d and swiotlb %d'
                        % (where, r['pool_mappings'], r['swiotlb_mappings']))
    return msgs


def untrusted_md(section, rows):
    """The untrusted regime's section of results/regimes.md."""
    lines = ['## untrusted: the NVMe device behind an external-facing port', '',
             section['how'], '',
             '| rw | bs | offset | bounced | swiotlb IOPS | pool IOPS | pool / swiotlb '
             '[95 %] | target |', '|---|---|---|---|---|---|---|---|']
    base = {(r['rw'], r['bs'], r['offset']): r['iops'] for r in rows if r['mode'] == 'swiotlb'}
    for r in rows:
        if r['mode'] != 'pool':
            continue
        iv = ('%.3f [%.3f-%.3f]' % (r['ratio_to_swiotlb'], r['ci_low'], r['ci_high'])
              if r['ci_low'] is not None else 'n/a')
        lines.append('| %s | %s | %d | %s | %s | %d | %s | %s |' % (
            r['rw'], r['bs'] if r['bs'] % 1024 else '%dk' % (r['bs'] // 1024), r['offset'],
            'yes' if r['bounced'] else 'no', base.get((r['rw'], r['bs'], r['offset']), '-'),
            r['iops'], iv, 'met' if r['ok'] else 'NOT met'))
    n = [r for r in rows if r['mode'] == 'pool']
    lines += ['', 'Target: pool faster than swiotlb (interval above 1) in every cell that '
              'bounces, within %d %% of it (median) in every other: met in %d of %d cells.'
              % (NOISE * 100, sum(1 for r in n if r['ok']), len(n)),
              '', 'Produced by `make bench` (harness/untrusted_bench.py); guest logs under '
              '`build/logs/untrusted-*`.']
    return '\n'.join(lines) + '\n'
