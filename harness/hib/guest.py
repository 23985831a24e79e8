# SPDX-License-Identifier: GPL-2.0-only
"""Parse what the guest init writes to its result port ("HIB ..." lines).

Line kinds (see harness/guest/init and the scenario files beside it):
  HIB begin SCENARIO UNAME BOOT_ID
  HIB mode MODE group=N type=T dev=D bounce=auto|on|off|none threshold=auto|N|none
           group_bounce=on|off|none
  HIB fio MODE RW BS NUMJOBS REP TERSE
  HIB prof MODE RW BS NUMJOBS REP cpu=N FUNCTION HITS TIME UNIT AVG UNIT S2 UNIT
  HIB pfio MODE RW BS NUMJOBS 0 TERSE    (the fio run the profile lines of REP 0 timed)
  HIB pprof MODE RW BS NUMJOBS 0 cpu=N FUNCTION HITS TIME UNIT ...  (the pool's entry
                                    points alone under the profiler, in a run of their own)
  HIB ppfio MODE RW BS NUMJOBS 0 TERSE   (that run; its policy lines carry pprof:MODE)
  HIB lockstat MODE RW BS NUMJOBS REP LINE  (hib.lockstat=1: a line of /proc/lock_stat
                                    after the fio run, cleared right before it; the
                                    lines of classes named like the pool's locks)
  HIB alt RW BS NUMJOBS REP MODE,MODE... SECTORS NS SEGS... SKIP_MS SEG_MS
                                    (modes taking turns in one fio run, harness/guest/alt.c:
                                     per mode the sectors transferred in its windows, their
                                     length in ns and the number of segments; then the
                                     skip and segment length it used)
  HIB stat TAG... NAME VALUE        (the pool's debugfs counters after TAG)
  HIB policy MODES RW BS NUMJOBS REP DEV class=C dir=to_device|from_device|bidirectional
           decision=bounce|map|warming pool_ns=M+U iommu_ns=M+U pool_timed=M+U
           iommu_timed=M+U switches=N (the cost policy of DEV's domain after the cell)
  HIB edu-warmup CHECK=RESULT...    (the edu module's pool run before the counted one)
  HIB mapbench REP PAGES DIR MODE NS (map+unmap microbenchmark: ns per pair, DIR 0 to
                                    the device, 1 from it)
  HIB ranges TAG DEV SIZExN@IOVA,...  (the classes DEV's pool has set up: slot size,
                                    number of slots and first IOVA of each, from
                                    debugfs policy)
  HIB verify MODE BS rc=N TERSE
  HIB untrusted-dev port=PATH removable=R type=T bounce=B ssdt=N protect=N
                                    (the untrusted scenario's device, harness/hib/untrusted.py)
  HIB verify-error MODE BS TEXT
  HIB case NAME                     (reliability: the case the lines below belong to)
  HIB rfio CASE rc=N JSON           (reliability: a fio --verify run, json without spaces)
  HIB rfio-err CASE TEXT            (a line fio wrote to stderr in that run)
  HIB knob NAME value=V want=ok|rej rc=N before=B after=A expect=E
  HIB knob-boot NAME VALUE          (a knob's value as the boot command line left it)
  HIB knob-log TEXT                 (a kernel log line about a refused parameter)
  HIB ask unplug|plug               (the guest asks the host for a monitor command)
  HIB hotplug-group GROUP type=T
  HIB load waited=Ns bounced=N err=TEXT   (the load before a teardown; informational)
  HIB hog steps=N free_kb=N min_kb=N low_kb=N stop_kb=N hog_kb=N   (memory-hog case)
  HIB dma-api-errors N
  HIB kmemleak N
  HIB error TEXT
  HIB end
"""
import collections
import json
import re

# fio --output-format=terse --terse-version=3: 1-based field numbers
_T_VERSION, _T_ERROR = 1, 5
_T_READ_KB, _T_READ_BW, _T_READ_IOPS = 6, 7, 8
_T_WRITE_KB, _T_WRITE_BW, _T_WRITE_IOPS = 47, 48, 49

_UNIT_US = {'ns': 1e-3, 'us': 1.0, 'ms': 1e3, 's': 1e6}

Fio = collections.namedtuple('Fio', 'read_kib read_bw_kib read_iops write_kib write_bw_kib '
                                    'write_iops error')
Prof = collections.namedtuple('Prof', 'cpu function hits time_us')
# One fio --output-format=json run, summed over its jobs.  verified: bytes fio read back
# and checked (the reads of a write+verify job); error: the first non-zero job error.
FioRun = collections.namedtuple('FioRun', 'rc read_bytes write_bytes ios error jobs')
Knob = collections.namedtuple('Knob', 'name value want rc before after expect')


class ParseError(ValueError):
    """A guest line that does not have the shape the init script writes."""


def parse_terse(text):
    """Parse one fio terse v3 line into a Fio tuple."""
    f = text.strip().split(';')
    if len(f) < _T_WRITE_IOPS or f[0] != '3':
        raise ParseError('not a fio terse v3 line: %r' % text[:80])
    try:
        def num(i):
            return float(f[i - 1])
        return Fio(read_kib=num(_T_READ_KB), read_bw_kib=num(_T_READ_BW),
                   read_iops=num(_T_READ_IOPS), write_kib=num(_T_WRITE_KB),
                   write_bw_kib=num(_T_WRITE_BW), write_iops=num(_T_WRITE_IOPS),
                   error=int(f[_T_ERROR - 1]))
    except ValueError as e:
        raise ParseError('bad number in fio terse line: %s' % e) from e


def parse_alt(f):
    """The fields of a "HIB alt" line as ([(key, Fio)], one per mode in the line's order,
    (skip ms, segment ms)).

    Each mode's I/Os are its sectors over the block size, its IOPS those over the
    length of its measured windows."""
    if len(f) < 5:
        raise ParseError('short alt line: %r' % ' '.join(f))
    rw, bs, modes = f[0], f[1], f[4].split(',')
    if len(f) != 7 + 3 * len(modes):
        raise ParseError('alt line with %d modes needs %d fields: %r'
                         % (len(modes), 7 + 3 * len(modes), ' '.join(f)))
    try:
        nj, rep, size = int(f[2]), int(f[3]), bs_bytes(bs)
        nums = [int(x) for x in f[5:]]
    except ValueError as e:
        raise ParseError('bad number in alt line: %r' % ' '.join(f)) from e
    out = []
    for i, mode in enumerate(modes):
        sectors, ns, segs = nums[3 * i:3 * i + 3]
        if ns <= 0 or segs <= 0:
            raise ParseError('alt line: mode %s measured for %d ns in %d segments'
                             % (mode, ns, segs))
        ios = sectors * 512.0 / size
        iops = ios * 1e9 / ns
        kib, bw = sectors / 2.0, iops * size / 1024.0
        if 'write' in rw:
            fio = Fio(0.0, 0.0, 0.0, kib, bw, iops, 0)
        else:
            fio = Fio(kib, bw, iops, 0.0, 0.0, 0.0, 0)
        out.append(((mode, rw, bs, nj, rep), fio))
    return out, (nums[-2], nums[-1])


def bs_bytes(bs):
    """'4k' -> 4096, '512' -> 512 (block sizes as fio and the guest write them)."""
    s = str(bs).strip().lower()
    mult = {'k': 1 << 10, 'm': 1 << 20}.get(s[-1:], 1)
    return int(s[:-1] if mult > 1 else s) * mult


def parse_prof(fields):
    """Parse 'cpu=N FUNCTION HITS TIME UNIT ...' from the ftrace function profiler."""
    if len(fields) < 5 or not fields[0].startswith('cpu='):
        raise ParseError('bad profiler line: %r' % ' '.join(fields))
    try:
        cpu = int(fields[0][4:])
        hits = int(fields[2])
        t = float(fields[3])
    except ValueError as e:
        raise ParseError('bad number in profiler line: %r' % ' '.join(fields)) from e
    unit = fields[4]
    if unit not in _UNIT_US:
        raise ParseError('unknown time unit %r in profiler line' % unit)
    return Prof(cpu=cpu, function=fields[1], hits=hits, time_us=t * _UNIT_US[unit])


def parse_fio_json(rc, text):
    """Sum a fio json report (one line, whitespace removed) over its jobs into a FioRun."""
    try:
        doc = json.loads(text[text.find('{'):])
        jobs = doc['jobs']
        rd = sum(int(j['read']['io_bytes']) for j in jobs)
        wr = sum(int(j['write']['io_bytes']) for j in jobs)
        ios = sum(int(j[d]['total_ios']) for j in jobs for d in ('read', 'write'))
        err = next((int(j['error']) for j in jobs if int(j.get('error', 0))), 0)
    except (ValueError, KeyError, TypeError) as e:
        raise ParseError('not a fio json report (%s): %r' % (e, text[:80])) from e
    return FioRun(rc=rc, read_bytes=rd, write_bytes=wr, ios=ios, error=err, jobs=len(jobs))


# fio's verify complaints, e.g. "crc32c: verify failed at file /dev/nvme0n1 offset
# 1048576, length 4096 (requested block: ...)" or "verify: bad magic header ..., length N"
_VERIFY_BAD = re.compile(r'verify failed|bad magic|bad header|mismatch|bad pattern', re.I)
_LENGTH = re.compile(r'length[ =]+(\d+)')


def corrupted_bytes(lines):
    """(bytes, complaints): the block lengths fio's verify complaints name, and how many."""
    total = n = 0
    for line in lines:
        if not _VERIFY_BAD.search(line):
            continue
        n += 1
        m = _LENGTH.search(line)
        if m:
            total += int(m.group(1))
    return total, n


def _kv(fields, names):
    """The values of 'name=value' fields, in the order of names."""
    d = {}
    for f in fields:
        k, eq, v = f.partition('=')
        if eq:
            d[k] = v
    try:
        return [d[n] for n in names]
    except KeyError as e:
        raise ParseError('missing %s= in %r' % (e.args[0], ' '.join(fields))) from e


class Output:
    """Everything one boot reported, grouped by kind."""

    def __init__(self):
        self.begin = None
        self.ended = False
        self.errors = []
        self.modes = []
        self.cells = []          # (key, Fio), key = (mode, rw, bs, numjobs, rep)
        self.pcells = {}         # key -> Fio of a profiled run (rep 0)
        self.alt_windows = []    # (skip ms, segment ms) of every alternating run
        self.prof = collections.defaultdict(list)   # key -> [Prof]
        self.pprof = collections.defaultdict(list)  # key -> [Prof] of the pool's functions
        self.ppcells = {}        # key -> Fio of that run
        self.lockstat = collections.defaultdict(list)   # key -> [lock_stat line]
        self.verify = []         # (mode, bs, rc, Fio or None)
        self.verify_errors = {}  # (mode, bs) -> text
        self.stats = collections.defaultdict(dict)   # tag -> {counter: value}
        self.dma_api_errors = None
        self.kmemleak = None
        self.cases = []          # reliability case names, in order
        self.rfio = {}           # fio run name -> FioRun
        self.rfio_err = collections.defaultdict(list)   # fio run name -> [stderr line]
        self.knobs = []          # [Knob]
        self.knob_boot = {}      # knob -> value after boot
        self.knob_log = []       # kernel log lines about refused parameters
        self.asks = []
        self.hotplug_group = None   # (group, type) after re-plug
        self.hog = {}            # memory-hog figures, KiB
        self.edu = {}            # mode -> {check: result} of the edu DMA sync module
        self.policy = []         # [dict] of "HIB policy" lines (parse_policy)
        self.edu_warmup = None   # {check: result} of the edu module's warm-up run
        self.mapbench = []       # [(rep, pages, dir, mode, ns)]
        self.ranges = {}         # (tag, dev) -> [(slot size, first IOVA, slots)]
        self.untrusted_dev = {}  # field -> value of the "HIB untrusted-dev" line
        self.trace_lines = {}    # trace event -> its first line in the trace, or ''


def parse_ranges(field):
    """The classes of a "HIB ranges" line, [(slot size, first IOVA, slots)]; [] for
    "none".  Each class is SIZExSLOTS@IOVA."""
    if field == 'none':
        return []
    out = []
    try:
        for r in field.split(','):
            size, base = r.split('@')
            size, x, slots = size.partition('x')
            if not x:
                raise ValueError('no slot count')
            out.append((int(size), int(base, 16), int(slots)))
    except ValueError as e:
        raise ParseError('bad ranges field: %r' % field) from e
    return out


def parse_policy(f):
    """One "HIB policy" line's fields (after the kind) as a dict.

    The class and the tag's block size are in bytes; pool_ns and iommu_ns are the
    estimated map+unmap time of each path per call."""
    if len(f) < 7:
        raise ParseError('short policy line: %r' % ' '.join(f))
    kv = dict(x.partition('=')[::2] for x in f[6:])
    try:
        d = {'modes': f[0].split(','), 'rw': f[1], 'bs': bs_bytes(f[2]), 'numjobs': int(f[3]),
             'rep': int(f[4]), 'dev': f[5], 'class': int(kv['class']), 'dir': kv['dir'],
             'decision': kv['decision'], 'switches': int(kv['switches'])}
        for path in ('pool', 'iommu'):
            # map+unmap: the estimates, and the timed calls behind each
            d[path + '_ns'] = sum(int(x) for x in kv[path + '_ns'].split('+'))
            d[path + '_timed'] = [int(x) for x in kv[path + '_timed'].split('+')]
    except (KeyError, ValueError) as e:
        raise ParseError('bad policy line: %r' % ' '.join(f)) from e
    if d['decision'] not in ('bounce', 'map', 'warming') or \
            d['dir'] not in ('to_device', 'from_device', 'bidirectional'):
        raise ParseError('bad policy line: %r' % ' '.join(f))
    return d


def _key(f):
    return (f[0], f[1], f[2], int(f[3]), int(f[4]))


def parse(text):
    """Parse the whole result-port text of one boot into an Output."""
    o = Output()
    for raw in text.splitlines():
        line = raw.strip()
        if not line.startswith('HIB '):
            continue
        kind, _, rest = line[4:].partition(' ')
        f = rest.split()
        if kind == 'begin':
            o.begin = f
        elif kind == 'end':
            o.ended = True
        elif kind == 'error':
            o.errors.append(rest)
        elif kind == 'mode':
            o.modes.append(f)
        elif kind == 'fio':
            if len(f) < 6:
                raise ParseError('short fio line: %r' % line)
            o.cells.append((_key(f), parse_terse(f[5])))
        elif kind == 'alt':
            cells, windows = parse_alt(f)
            o.cells += cells
            o.alt_windows.append(windows)
        elif kind == 'pfio':
            if len(f) < 6:
                raise ParseError('short pfio line: %r' % line)
            o.pcells[_key(f)] = parse_terse(f[5])
        elif kind in ('prof', 'pprof'):
            if len(f) < 6:
                raise ParseError('short %s line: %r' % (kind, line))
            (o.prof if kind == 'prof' else o.pprof)[_key(f)].append(parse_prof(f[5:]))
        elif kind == 'ppfio':
            if len(f) < 6:
                raise ParseError('short ppfio line: %r' % line)
            o.ppcells[_key(f)] = parse_terse(f[5])
        elif kind == 'lockstat':
            if len(f) < 6:
                raise ParseError('short lockstat line: %r' % line)
            o.lockstat[_key(f)].append(' '.join(f[5:]))
        elif kind == 'verify':
            if len(f) < 3 or not f[2].startswith('rc='):
                raise ParseError('bad verify line: %r' % line)
            rc = int(f[2][3:])
            fio = None
            if len(f) > 3:
                try:
                    fio = parse_terse(f[3])
                except ParseError:
                    # a failed fio prints its error where the terse line would be
                    if rc == 0:
                        raise
            o.verify.append((f[0], f[1], rc, fio))
        elif kind == 'verify-error':
            o.verify_errors[(f[0], f[1])] = ' '.join(f[2:])
        elif kind == 'stat':
            if len(f) < 3:
                raise ParseError('short stat line: %r' % line)
            try:
                o.stats[' '.join(f[:-2])][f[-2]] = int(f[-1])
            except ValueError as e:
                raise ParseError('bad stat value: %r' % line) from e
        elif kind == 'policy':
            o.policy.append(parse_policy(f))
        elif kind == 'ranges':
            if len(f) < 3:
                raise ParseError('short ranges line: %r' % line)
            o.ranges[(' '.join(f[:-2]), f[-2])] = parse_ranges(f[-1])
        elif kind == 'mapbench':
            if len(f) != 5:
                raise ParseError('bad mapbench line: %r' % line)
            try:
                o.mapbench.append((int(f[0]), int(f[1]), int(f[2]), f[3], int(f[4])))
            except ValueError as e:
                raise ParseError('bad mapbench line: %r' % line) from e
        elif kind == 'untrusted-dev':
            o.untrusted_dev = dict(x.partition('=')[::2] for x in f)
        elif kind == 'case':
            o.cases.append(rest.strip())
        elif kind == 'edu':
            # HIB edu MODE cpu=ok dev=ok ring=ok coherent=1 skip_sync_before=1 ...
            if len(f) < 2:
                raise ParseError('short edu line: %r' % line)
            o.edu[f[0]] = dict(kv.partition('=')[::2] for kv in f[1:])
        elif kind == 'edu-warmup':
            # HIB edu-warmup cpu=ok dev=ok ...: the pool run before the counted one
            o.edu_warmup = dict(kv.partition('=')[::2] for kv in f)
        elif kind == 'rfio':
            if len(f) < 2 or not f[1].startswith('rc='):
                raise ParseError('bad rfio line: %r' % line[:120])
            rc = int(f[1][3:])
            if len(f) > 2:
                o.rfio[f[0]] = parse_fio_json(rc, f[2])
            else:
                o.rfio[f[0]] = FioRun(rc=rc, read_bytes=0, write_bytes=0, ios=0, error=-1, jobs=0)
        elif kind == 'rfio-err':
            o.rfio_err[f[0]].append(rest.partition(' ')[2])
        elif kind == 'knob':
            if not f:
                raise ParseError('bad knob line: %r' % line)
            value, want, rc, before, after, expect = _kv(
                f[1:], ('value', 'want', 'rc', 'before', 'after', 'expect'))
            o.knobs.append(Knob(f[0], value, want, int(rc), before, after, expect))
        elif kind == 'knob-boot':
            o.knob_boot[f[0]] = f[1] if len(f) > 1 else ''
        elif kind == 'knob-log':
            o.knob_log.append(rest)
        elif kind == 'ask':
            o.asks.append(rest.strip())
        elif kind == 'trace-line':
            if not f:
                raise ParseError('short trace-line line: %r' % line)
            o.trace_lines[f[0]] = rest.strip()[len(f[0]):].strip()
        elif kind == 'hotplug-group':
            o.hotplug_group = (f[0], _kv(f[1:], ('type',))[0])
        elif kind == 'hog':
            names = ('steps', 'free_kb', 'min_kb', 'low_kb', 'stop_kb', 'hog_kb')
            try:
                o.hog = dict(zip(names, map(int, _kv(f, names))))
            except ValueError as e:
                raise ParseError('bad hog line: %r' % line) from e
        elif kind == 'dma-api-errors':
            o.dma_api_errors = int(f[0])
        elif kind == 'kmemleak':
            o.kmemleak = int(f[0])
    return o


# What each bench mode must leave behind (harness/guest/lib.sh, set_mode): the IOMMU
# group's type, iommu.bounce, and whether the threshold is raised to the largest class.
MODE_STATE = {
    'strict': ('DMA', 'off', None), 'strict2': ('DMA', 'off', None),
    'pool': ('DMA', 'auto', None), 'pool-auto': ('DMA', 'on', 'auto'),
    'pool-all': ('DMA', 'on', 'all'),
    'lazy': ('DMA-FQ', 'off', None), 'lazy-pool': ('DMA-FQ', 'auto', None),
    'lazy-pool-auto': ('DMA-FQ', 'on', 'auto'), 'lazy-pool-all': ('DMA-FQ', 'on', 'all'),
    'passthrough': ('identity', 'off', None), 'swiotlb': ('DMA', 'off', None),
}


def mode_problems(modes, largest_bs):
    """Why the guest's "HIB mode" lines do not show the modes it was asked for; [].

    A pool-all mode must bounce every block of the run: its threshold is at least
    largest_bs (bytes).  On a kernel without the pool, bounce=none counts as off.  Where
    the guest read the group's bounce file, a mode with the pool on or off must find
    its group so (under bounce=auto either is right: it depends on the IOMMU)."""
    msgs = []
    for m in modes:
        want = MODE_STATE.get(m[0])
        if not want:
            msgs.append('unknown mode %r' % m[0])
            continue
        d = dict(f.partition('=')[::2] for f in m[1:])
        bounce = 'off' if d.get('bounce') == 'none' else d.get('bounce')
        if d.get('type') != want[0] or bounce != want[1]:
            msgs.append('mode %s ran with type=%s bounce=%s, not type=%s bounce=%s'
                        % (m[0], d.get('type'), d.get('bounce'), want[0], want[1]))
        elif d.get('group_bounce') not in (None, 'none') and (
                (want[1] == 'on' and d['group_bounce'] != 'on') or
                (want[1] == 'off' and d['group_bounce'] != 'off')):
            # the group's own file, which overrides the knob, says what really runs
            msgs.append('mode %s ran with its group bouncing %s, not %s'
                        % (m[0], d['group_bounce'], want[1]))
        elif want[2] == 'auto' and d.get('threshold') != 'auto':
            msgs.append('mode %s ran with threshold=%s, not auto' % (m[0], d.get('threshold')))
        elif want[2] == 'all' and not (d.get('threshold', '').isdigit() and
                                       int(d['threshold']) >= largest_bs):
            msgs.append('mode %s ran with threshold=%s, below the %d-byte blocks it must '
                        'bounce' % (m[0], d.get('threshold'), largest_bs))
    return msgs


def iommu_time(profs, prefix):
    """(total us, calls) over CPUs of the profiled functions whose name starts with prefix."""
    t = sum(p.time_us for p in profs if p.function.startswith(prefix))
    n = sum(p.hits for p in profs if p.function.startswith(prefix))
    return t, n
