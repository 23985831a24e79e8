#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""make series: the patch series as it would be posted, under build/series/, sent nowhere.

b4 does the cover-letter flow as for a real posting: a branch of build/linux holding the
series (a worktree, build/series-wt) is enrolled with `b4 prep` on branch `master`, the
import that harness/kernel.sh tags `base` (b4 wants a branch when several contain it),
its cover letter (in the branch description) is written here from results/ (the bench's
pool/strict table, the five regimes, the untrusted regime and make scale: nothing typed),
`b4 prep --auto-to-cc` adds the recipients scripts/get_maintainer.pl names, and
`b4 send -o build/series` writes the cover letter and the patches as mail files instead of
sending them.  The script then checks what it wrote: one file per patch plus the cover,
numbered subjects, the recipients, the tables, and each patch's body equal to patches/.
"""
import argparse
import email
import email.policy
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

HARNESS = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HARNESS)
SRC = os.path.join(TOP, 'build', 'linux')
BRANCH = 'io-buffer-pool'
SUBJECT = 'iommu: pools of IOMMU-mapped bounce buffers for small streaming DMA'
AUTHOR = ('io-buffer-pool team', 'iobp@example.org')


class SeriesError(Exception):
    pass


def git(*args, cwd=SRC, check=True):
    p = subprocess.run(['git', '-C', cwd, '-c', 'user.name=%s' % AUTHOR[0],
                        '-c', 'user.email=%s' % AUTHOR[1]] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if check and p.returncode:
        raise SeriesError('git %s: %s' % (' '.join(args), p.stdout.strip()))
    return p.stdout.strip()


# What b4 runs with, as git configuration given in its environment only (the
# worktree's config file is build/linux's): the identity, the cover letter in the
# branch description, and, since b4 send -o writes files and sends nothing, a "mailer"
# that refuses, were it ever to send (without one b4 picks its web endpoint).
B4_CONFIG = (('user.name', AUTHOR[0]), ('user.email', AUTHOR[1]),
             ('b4.prep-cover-strategy', 'branch-description'),
             ('sendemail.smtpserver', '/bin/false'))


def b4(*args, cwd):
    env = dict(os.environ, GIT_CONFIG_COUNT=str(len(B4_CONFIG)))
    for i, (k, v) in enumerate(B4_CONFIG):
        env['GIT_CONFIG_KEY_%d' % i] = k
        env['GIT_CONFIG_VALUE_%d' % i] = v
    p = subprocess.run(['b4', '--no-interactive'] + list(args), cwd=cwd, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode:
        raise SeriesError('b4 %s: %s' % (' '.join(args), p.stdout.strip()[-2000:]))
    return p.stdout


def _load(results, name):
    path = os.path.join(results, name)
    if not os.path.exists(path):
        raise SeriesError('no %s: run the benchmark that writes it first' % path)
    with open(path) as f:
        return json.load(f)


def _kib(bs):
    return '%dk' % (bs // 1024) if bs >= 1024 else '%d' % bs


def _host(results):
    """The machine line of the bench's report (bench.md), as the harness wrote it."""
    with open(os.path.join(results, 'bench.md')) as f:
        for line in f:
            if 'Host:' in line:
                return line.strip()[line.index('Host:'):].strip()
    raise SeriesError('no "Host:" line in results/bench.md')


def bench_table(doc):
    """pool/strict per direction, jobs and block size: the bench's main result."""
    runs = [r for r in doc['runs'] if r['mode'] == 'pool' and 'vs_strict_median' in r]
    if not runs:
        raise SeriesError('results/bench.json has no pool/strict ratios')
    out = ['  rw     jobs  bs    strict IOPS  pool/strict [95% interval]']
    for r in sorted(runs, key=lambda r: (r['rw'], r['numjobs'], r['bs'])):
        strict = [s for s in doc['runs'] if s['mode'] == 'strict' and s['rw'] == r['rw'] and
                  s['numjobs'] == r['numjobs'] and s['bs'] == r['bs']]
        out.append('  %-6s %4d  %-5s %11s  %.3f [%.3f-%.3f]'
                   % (r['rw'], r['numjobs'], _kib(r['bs']),
                      strict[0]['iops'] if strict else '-', r['vs_strict_median'],
                      r['vs_strict_ci_low'], r['vs_strict_ci_high']))
    return out


def regimes_lines(doc):
    out = ['  regime         break-even read/write   policy bounces up to read/write']
    for reg, be in doc['break_even'].items():
        pol = doc.get('policy_break_even', {}).get(reg, {})
        out.append('  %-14s %10s / %-10s    %s / %s'
                   % (reg, be.get('read'), be.get('write'), pol.get('read', '-'),
                      pol.get('write', '-')))
    a = doc.get('auto')
    if a:
        w = a['worst']
        out += [''] + textwrap.wrap(
            'The policy (pool-auto) reached at least 0.97 of the better of strict and '
            'pool-all in %d of %d cells; where the two differ beyond their intervals it '
            'chose the faster in %d of %d; its worst cell, %s %s %s with %d jobs, %.3f '
            '[%.3f-%.3f] (decision: %s).'
            % (a['cells_at_target'], a['cells'], a['decisions_right'], a['decisions_judged'],
               w['regime'], w['rw'], _kib(w['bs']), w['numjobs'], w['ratio_to_best'],
               w['best_ci_low'], w['best_ci_high'], w['decision']), 72, initial_indent='  ',
            subsequent_indent='  ')
    return out


def scale_lines(doc):
    c, s, r = (doc['contentions_per_1000_bounces'], doc['scaling_1_to_4'],
               doc['read_4k_us'])
    return ['  lock contentions per 1000 bounces, 4 jobs: %.2f without the' % c['before'],
            '    per-CPU caches, %.2f with them' % c['after'],
            '  IOPS from 1 to 4 jobs (4 vCPUs on 2 host cores): strict x%.3f,' % s['strict'],
            '    pool x%.2f' % s['pool'],
            '  a 4k read under the function profiler: map %.2f us, unmap %.2f us,'
            % (r['map'], r['unmap']),
            '    of which copies %.2f us' % r['copies']]


def untrusted_lines(doc):
    rows = [r for r in doc['runs'] if r['regime'] == 'untrusted' and r['mode'] == 'pool'
            and r.get('bounced')]
    if not rows:
        return []
    out = ['  An untrusted NVMe device (mappings that do not fill their granules),',
           '  pool/swiotlb [95%% interval], %s:' % doc.get('untrusted', {}).get('date', '?')]
    for r in sorted(rows, key=lambda r: (r['rw'], r['bs'], r['offset'])):
        out.append('    %-5s %-4s buffer offset %4d: %.3f [%.3f-%.3f]'
                   % (r['rw'], _kib(r['bs']), r['offset'], r['ratio_to_swiotlb'],
                      r['ci_low'], r['ci_high']))
    return out


CHANGES = """Changes since the RFC (David Stevens, "[RFC PATCH 0/4] Add dynamic
iommu backed bounce buffers", July 2021; its v2 of August 2021, 9 patches,
never merged):
- One pool per DMA domain serves both the mappings bounced for cost and
  the sub-granule mappings dma-iommu must bounce for untrusted devices,
  instead of a third bouncing scheme beside swiotlb (Robin Murphy's
  review).
- The domain decides: only IOMMUs whose driver says its maps are costly
  (virtio-iommu, VT-d in caching mode, s390) bounce by default, per IOMMU
  group switchable in sysfs, and per size class and direction a measured
  policy bounces only while the copies cost less than a map plus unmap
  (Lu Baolu's question; iommu.bounce_threshold= still forces a size).
- DMA_FROM_DEVICE fills the slot from the caller's buffer at map time,
  as swiotlb does, so bytes the device does not write stay the caller's
  (v1 gave the caller another mapping's stale bytes);
  DMA_ATTR_SKIP_CPU_SYNC skips syncs only.
- No BUG_ON(); the allocator's gfp is derived, not passed (Robin Murphy);
  memory goes back under pressure through a shrinker as well as when idle;
  knobs are validated and the writable ones change at run time; every
  fallback is counted by reason and traced.
- The dma_sync_*() wrappers reach the pool on coherent devices (the first
  bounce clears dma_skip_sync, as swiotlb does).
- Per-CPU caches of idle slots in front of each class's lock, so that a
  map and its unmap on one CPU take no shared lock.
- KUnit suite, fault injection, and documentation for administrators."""


def cover_text(results, tree):
    """The cover letter: its subject line, a blank line, its body.  tree: the base
    commit ('base'), its subject ('base_subject') and the number of the patch that adds
    the admin guide page ('doc_patch'), from tree_facts()."""
    bench = _load(results, 'bench.json')
    regimes = _load(results, 'regimes.json')
    scale = _load(results, 'scale.json')
    lines = [SUBJECT, '',
             'Where an IOMMU map and unmap are costly (a guest behind virtio-iommu or an',
             'emulated VT-d, s390, strict invalidation), copying a small streaming DMA',
             'buffer costs less than mapping it.  This series gives each dma-iommu',
             'domain a pool of bounce buffers that stay mapped in its IOMMU: a bounced',
             'mapping costs a copy instead of a map and an unmap, and the device still',
             'reaches nothing but the buffers it is handed.  The same pool serves the',
             'sub-granule mappings of untrusted devices, which dma-iommu bounces',
             'through swiotlb and maps today.',
             '',
             'Documentation/admin-guide/iommu-bounce.rst (patch %d) says when to turn it'
             % tree['doc_patch'],
             'on, what it protects and what not.',
             '',
             'Results (fio --direct=1, libaio, iodepth 64, NVMe behind virtio-iommu,',
             'strict invalidation, pool/strict paired within one run;',
             '%s, kernel %s,' % (bench['date'], bench['kernel']),
             'QEMU %s, fio %s):' % (bench['qemu'], bench['fio']),
             ] + textwrap.wrap(_host(results), 72) + ['']
    lines += bench_table(bench)
    lines += ['', 'Five IOMMU cost regimes (results/regimes.json, %s):' % regimes['date'],
              'where bouncing pays, measured, and where the policy bounces:', '']
    lines += regimes_lines(regimes)
    u = untrusted_lines(regimes)
    if u:
        lines += [''] + u
    lines += ['', 'Four CPUs (results/scale.json):', ''] + scale_lines(scale)
    base = tree['base']
    lines += ['', CHANGES, '',
              'Base: Linux %s as Debian packages it (linux-source-6.12), imported as'
              % bench['kernel'],
              'commit %s ("%s");' % (base[:12], tree['base_subject']),
              'the base-commit trailer below names that import, not an upstream commit.',
              '']
    return '\n'.join(lines)


def _patch_adding(path):
    """The number in the series of the patch that adds path."""
    revs = git('rev-list', '--reverse', 'base..HEAD').split()
    added = git('log', '--format=%H', '--diff-filter=A', 'base..HEAD', '--', path).split()
    if not added:
        raise SeriesError('no patch adds %s' % path)
    return revs.index(added[-1]) + 1


def tree_facts():
    return {'base': git('rev-parse', 'base'),
            'base_subject': git('log', '-1', '--format=%s', 'base'),
            'doc_patch': _patch_adding('Documentation/admin-guide/iommu-bounce.rst')}


def prepare_branch(wt):
    head = git('rev-parse', 'HEAD')
    if git('rev-parse', 'master') != git('rev-parse', 'base^{commit}'):
        raise SeriesError('branch master is not the import tagged base: b4 enrolls on it')
    n = len(git('rev-list', 'base..HEAD').split())
    if n == 0:
        raise SeriesError('build/linux has no patches on base: run harness/kernel.sh prepare')
    git('worktree', 'prune')
    if os.path.exists(wt):
        git('worktree', 'remove', '--force', wt, check=False)
        shutil.rmtree(wt, ignore_errors=True)
    git('worktree', 'prune')
    # b4 keeps its tracking in the branch's config: start from none each time
    git('config', '--remove-section', 'branch.%s' % BRANCH, check=False)
    git('worktree', 'add', '-q', '-f', '-B', BRANCH, wt, head)
    return n


def patch_id(path):
    """git patch-id --stable of a patch or mail file: its diff, whatever the headers."""
    with open(path, 'rb') as f:
        p = subprocess.run(['git', 'patch-id', '--stable'], stdin=f, stdout=subprocess.PIPE,
                           text=True, cwd=TOP)
    return p.stdout.split()[0] if p.stdout.split() else None


def fix_base_commit(out, base):
    """b4 0.12 names the parent of the fork point as the base when the cover letter is
    kept in the branch description (get_series_details() takes the series start, which
    is then the fork point itself, and steps back one); here the fork point is a root
    commit, and b4 writes "BASE~1".  Put the fork point, the real base, in its place."""
    files = sorted(glob.glob(os.path.join(out, '*.eml')))
    if not files:
        raise SeriesError('b4 wrote no messages into %s' % out)
    with open(files[0]) as f:
        text = f.read()
    fixed, n = re.subn(r'^base-commit: .*$', 'base-commit: %s' % base, text, flags=re.M)
    if n != 1:
        raise SeriesError('the cover letter has %d base-commit lines' % n)
    with open(files[0], 'w') as f:
        f.write(fixed)


def check_output(out, n, cover, patches_dir=os.path.join(TOP, 'patches'), base=None):
    files = sorted(glob.glob(os.path.join(out, '*.eml')))
    if len(files) != n + 1:
        raise SeriesError('%s holds %d messages, wanted %d patches and a cover letter'
                          % (out, len(files), n))
    msgs = []
    for f in files:
        with open(f, 'rb') as fh:
            msgs.append(email.message_from_binary_file(fh, policy=email.policy.default))
    subj = [str(m['Subject']) for m in msgs]
    want0 = re.compile(r'^\[PATCH( v\d+)? 0+/0*%d\] %s$' % (n, re.escape(SUBJECT)))
    if not want0.match(subj[0]):
        raise SeriesError('cover letter subject %r' % subj[0])
    for i, s in enumerate(subj[1:], 1):
        if not re.match(r'^\[PATCH( v\d+)? 0*%d/0*%d\] ' % (i, n), s):
            raise SeriesError('message %d subject %r' % (i, s))
    to = str(msgs[0]['To'] or '')
    cc = str(msgs[0]['Cc'] or '')
    if 'iommu@lists.linux.dev' not in to + cc:
        raise SeriesError('the cover letter is not addressed to the IOMMU list: To %r Cc %r'
                          % (to, cc))
    body = msgs[0].get_body().get_content()
    for want in ('pool/strict', 'base-commit:', 'Changes since the RFC'):
        if want not in body:
            raise SeriesError('the cover letter has no %r' % want)
    if base and not re.search(r'^base-commit: %s$' % base, body, flags=re.M):
        raise SeriesError('the cover letter\'s base-commit is not %s' % base)
    for line in cover.splitlines():
        if line.startswith('  read ') or line.startswith('  write '):
            if line.rstrip() not in body:
                raise SeriesError('the cover letter lost the results row %r' % line)
    patches = sorted(glob.glob(os.path.join(patches_dir, '0*.patch')))
    if len(patches) != n:
        raise SeriesError('patches/ holds %d patches, build/linux %d: export the series first'
                          % (len(patches), n))
    for f, p in zip(files[1:], patches):
        if patch_id(f) is None or patch_id(f) != patch_id(p):
            raise SeriesError('%s is not %s' % (os.path.basename(f), os.path.basename(p)))
    return subj, to, cc


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--results', default=os.path.join(TOP, 'results'))
    ap.add_argument('--out', default=os.path.join(TOP, 'build', 'series'))
    a = ap.parse_args()
    wt = os.path.join(TOP, 'build', 'series-wt')
    try:
        cover = cover_text(a.results, tree_facts())
        n = prepare_branch(wt)
        b4('prep', '-e', 'master', cwd=wt)  # the import, as harness/kernel.sh made it
        git('config', '--local', 'branch.%s.description' % BRANCH, cover, cwd=wt)
        b4('prep', '--auto-to-cc', cwd=wt)
        shutil.rmtree(a.out, ignore_errors=True)
        b4('send', '--no-sign', '-o', a.out, cwd=wt)
        base = git('rev-parse', 'base^{commit}')
        fix_base_commit(a.out, base)
        subj, to, cc = check_output(a.out, n, cover, base=base)
    except SeriesError as e:
        print('series: %s' % e, file=sys.stderr)
        return 1
    print('series: %d patches and a cover letter in %s (nothing sent)' % (n, a.out))
    print('  To: %s' % to)
    print('  Cc: %s' % cc)
    for s in subj:
        print('  %s' % s)
    return 0


if __name__ == '__main__':
    sys.exit(main())
