# SPDX-License-Identifier: GPL-2.0-only
"""The untrusted device: what make check asserts about the guest's "untrusted" scenario.

The guest (harness/guest/init, untrusted()) runs its NVMe device behind a root port that
an SSDT calls external-facing, so that the kernel itself marks the device untrusted.
It reports:
  HIB untrusted-dev port=PATH removable=R type=T bounce=B ssdt=N protect=N
  HIB verify u-MODE BS@ALIGN rc=N TERSE   (fio --verify=crc32c, BS bytes, buffers ALIGN
                                          bytes into a page; MODE pool or swiotlb)
  HIB stat u MODE BS ALIGN before|after NAME VALUE   (debugfs io_buffer_pool/untrusted,
                                          plus swiotlb_traced, swiotlb_hiwater)
"""
PORT_PATH = '\\_SB_.PCI0.S20_'   # the root port the SSDT names (harness/acpi/extport.asl)
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


def verdicts(out):
    """[(name, ok, why)] for make check: the device is untrusted the way firmware makes
    it, every run verified its data, and the counters show who bounced: the pool every
    block that must be bounced and that a class holds, swiotlb (its tracepoint
    agreeing with the pool's count) the rest, and nothing when the pool is off."""
    dev = out.untrusted_dev
    v = [('untrusted: the kernel installed the SSDT from the initramfs',
          dev.get('ssdt', '0') not in ('', '0'), str(dev)),
         ('untrusted: the NVMe device sits below %s, removable (external-facing port)'
          % PORT_PATH, dev.get('port') == PORT_PATH and dev.get('removable') == 'removable',
          str(dev)),
         ('untrusted: its domain is forced to strict DMA (type %s), with a pool for '
          'protection only (%s)' % (dev.get('type'), dev.get('bounce')),
          dev.get('type') == 'DMA' and dev.get('bounce') == 'on'
          and dev.get('protect', '0') not in ('', '0'), str(dev))]
    runs = [(m, bs, rc, fio) for m, bs, rc, fio in out.verify if m.startswith('u-')]
    v.append(('untrusted: fio verify runs reported', len(runs) > 0, 'no "HIB verify u-" line'))
    for m, key, rc, fio in runs:
        mode = m[2:]
        bs, align = (int(x) for x in key.split('@'))
        tag = 'u %s %d %d' % (mode, bs, align)
        name = 'untrusted %s: fio verify bs=%d at offset %d' % (mode, bs, align)
        ok = rc == 0 and fio is not None and fio.error == 0 and fio.write_kib > 0 \
            and fio.read_kib >= fio.write_kib
        v.append(('%s (wrote %d KiB, read back and checked %d KiB)'
                  % (name, fio.write_kib if fio else 0, fio.read_kib if fio else 0), ok,
                  out.verify_errors.get((m, key), 'rc=%d' % rc)))
        ios = int(round((fio.write_kib + fio.read_kib) * 1024 / bs)) if fio else 0
        d = {k: delta(out, tag, k) for k in ('untrusted_bounced', 'untrusted_swiotlb',
                                             'fallback_too_big', 'fallback_off',
                                             'fallback_class_setup', 'swiotlb_traced')}
        if None in d.values():
            v.append((name + ': counters', False, 'missing stat lines for %r' % tag))
            continue
        why = '%d I/Os, counter changes %s' % (ios, d)
        if not must_bounce(bs, align):
            want = d['untrusted_bounced'] == 0 and d['untrusted_swiotlb'] == 0 \
                and d['swiotlb_traced'] == 0
            what = 'granule-aligned: mapped, bounced by no one'
        elif mode == 'swiotlb':
            want = d['untrusted_bounced'] == 0 and d['untrusted_swiotlb'] >= ios \
                and d['fallback_off'] == d['untrusted_swiotlb'] == d['swiotlb_traced']
            what = 'the pool off: swiotlb bounced every block (%d traced), the pool none' \
                % d['swiotlb_traced']
        elif pool_holds(bs, align):
            # a class is set up on its first mapping, by a worker: until then its
            # mappings are swiotlb's, counted as fallback_class_setup
            want = d['untrusted_bounced'] + d['untrusted_swiotlb'] >= ios \
                and d['untrusted_swiotlb'] == d['fallback_class_setup'] == d['swiotlb_traced']
            what = ('the pool bounced every block (%d mappings), swiotlb only %d while a '
                    'class was set up' % (d['untrusted_bounced'], d['untrusted_swiotlb']))
        else:
            # one segment: too big for a class, swiotlb's; split: the pool's
            want = d['untrusted_bounced'] + d['untrusted_swiotlb'] >= ios \
                and d['fallback_too_big'] + d['fallback_class_setup'] \
                == d['untrusted_swiotlb'] == d['swiotlb_traced']
            what = ('what a class holds the pool bounced (%d), the rest swiotlb (%d: too big '
                    'or while a class was set up, traced alike)'
                    % (d['untrusted_bounced'], d['untrusted_swiotlb']))
        v.append(('%s: %s' % (name, what), want, why))
    return v


# make bench's untrusted regime (harness/untrusted_bench.py): per buffer offset one boot
# of the lean kernel, modes swiotlb (the pool off: today's path) and pool taking turns.
BENCH_MODES = ('swiotlb', 'pool')
# within the noise: an A/A run's ratios stay within this of 1 (results/aa.md)
NOISE = 0.03


def cell_counts(stats):
    """{(rw, bs, numjobs, rep): {counter: change}} over each alternating run of a boot,
    from its "HIB stat" lines in order (tag "MODE,MODE RW BS NJ REP")."""
    out, prev = {}, {}
    for tag, vals in stats.items():
        f = tag.split()
        # the modes in the order that cell ran them
        if len(f) != 5 or sorted(f[0].split(',')) != sorted(BENCH_MODES):
            continue
        key = (f[1], bs_of(f[2]), int(f[3]), int(f[4]))
        out[key] = {k: v - prev.get(k, 0) for k, v in vals.items()}
        prev = vals
    return out


def bs_of(token):
    s = token.strip().lower()
    return int(s[:-1]) * 1024 if s.endswith('k') else int(s)


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
