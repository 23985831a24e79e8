# SPDX-License-Identifier: GPL-2.0-only
"""Boot the guest: q35 under TCG, virtio-iommu, NVMe on a null or file backend.

The kernel console goes to CONSOLE (a log file), the guest init's "HIB ..." result lines
to a second serial port, RESULTS.  A run fails when QEMU outlives its timeout, the kernel
prints a report (WARNING, BUG, KASAN, lockdep, DMA-API, kmemleak: see console.py), the
guest never reaches "HIB end", or it says "HIB error".
"""
import json
import os
import socket
import subprocess
import threading
import time

from . import console, guest

QEMU = 'qemu-system-x86_64'


class RunFailed(Exception):
    """A boot that did not produce a clean, complete result."""


# The NVMe device of a hot-plug run (see command() and hotplug_request()): on its own
# PCIe root port, its disk on a -blockdev node that outlives it.
HOTPLUG_ID = 'nvme0'
HOTPLUG_DEVICE = {'driver': 'nvme', 'id': HOTPLUG_ID, 'bus': 'rp1', 'drive': 'nvm',
                  'serial': 'hib0001'}


# The emulated IOMMUs of the benchmark's cost regimes (see IOMMU_APPEND for what the
# guest needs on its command line with each).
IOMMU_DEVICE = {
    'virtio': 'virtio-iommu-pci',
    # VT-d as under a hypervisor: the guest must invalidate after every map too
    'vtd-cm': 'intel-iommu,caching-mode=on,intremap=off',
    'vtd': 'intel-iommu,caching-mode=off,intremap=off',
}
IOMMU_APPEND = {'virtio': '', 'vtd-cm': 'intel_iommu=on', 'vtd': 'intel_iommu=on'}
TCG_THREADS = ('multi', 'single')


# untrusted=True: the NVMe device behind a root port at this fixed address, which the
# SSDT of build/acpi-untrusted.cpio (harness/acpi/extport.asl) calls external-facing,
# and RAM above 4 GiB, without which an x86 guest has no swiotlb (the untrusted
# device's fallback and baseline).
UNTRUSTED_PORT = 'pcie-root-port,id=rp1,chassis=1,slot=1,bus=pcie.0,addr=0x4'
UNTRUSTED_MEM = '3G'


def command(kernel, initrd, append, console_log, results_log, disk=None, smp=2,
            mem='2G', monitor=None, hotplug=False, edu=False, iommu='virtio', tcg='multi',
            untrusted=False):
    """Build the QEMU command line (a list) for one boot.

    hotplug puts the NVMe device (id nvme0) on a pcie-root-port (id rp1), its disk on a
    -blockdev node that outlives the device, so that QMP device_del and device_add can
    remove and re-add it; q35 signals that to the guest through ACPI.  monitor is the
    path of a QMP unix socket.  edu adds QEMU's edu device, whose DMA engine the
    harness's edu_dma module drives (its default 28-bit DMA mask widened to 32).
    iommu names the emulated IOMMU (IOMMU_DEVICE); tcg is 'multi' (a host thread per
    vCPU) or 'single' (one thread runs every vCPU in turn).  untrusted puts the NVMe
    device behind UNTRUSTED_PORT with UNTRUSTED_MEM of RAM (the initrd must carry the
    SSDT); not with hotplug.
    """
    if untrusted and hotplug:
        raise ValueError('untrusted and hotplug both want the root port')
    if untrusted:
        if mem != '2G':
            raise ValueError('untrusted runs with %s of RAM, not %s' % (UNTRUSTED_MEM, mem))
        mem = UNTRUSTED_MEM
    if iommu not in IOMMU_DEVICE:
        raise ValueError('unknown IOMMU %r (known: %s)' % (iommu, ', '.join(IOMMU_DEVICE)))
    if tcg not in TCG_THREADS:
        raise ValueError('unknown TCG threading %r' % tcg)
    extra = IOMMU_APPEND[iommu]
    if extra and extra not in append.split():
        append = append + ' ' + extra
    # debug-threads: vCPU threads named "CPU n/TCG", so that pin_vcpus() finds them
    cmd = [QEMU, '-name', 'hib,debug-threads=on', '-M', 'q35', '-cpu', 'max', '-smp', str(smp), '-m', mem,
           '-accel', 'tcg,thread=' + tcg, '-nodefaults', '-display', 'none',
           '-no-reboot', '-kernel', kernel, '-initrd', initrd, '-append', append,
           '-serial', 'file:' + console_log, '-serial', 'file:' + results_log,
           '-device', IOMMU_DEVICE[iommu]]
    if hotplug:
        if not disk:
            raise ValueError('hotplug needs a disk image')
        cmd += ['-device', 'pcie-root-port,id=rp1,chassis=1,slot=1',
                '-blockdev', 'driver=file,filename=%s,node-name=nvmfile' % disk,
                '-blockdev', 'driver=raw,file=nvmfile,node-name=nvm',
                '-device', ','.join(['nvme'] + ['%s=%s' % kv for kv in HOTPLUG_DEVICE.items()
                                                 if kv[0] != 'driver'])]
    else:
        if disk:
            cmd += ['-drive', 'file=%s,format=raw,if=none,id=nvm,cache=writeback' % disk]
        else:
            cmd += ['-drive', 'driver=null-co,size=8G,read-zeroes=on,if=none,id=nvm']
        if untrusted:
            cmd += ['-device', UNTRUSTED_PORT, '-device', 'nvme,serial=hib0001,drive=nvm,bus=rp1']
        else:
            cmd += ['-device', 'nvme,serial=hib0001,drive=nvm']
    if edu:
        cmd += ['-device', 'edu,dma_mask=0xffffffff']
    cmd += ['-monitor', 'none']
    if monitor:
        cmd += ['-qmp', 'unix:%s,server=on,wait=off' % monitor]
    return cmd


class Run:
    """One finished boot: paths, elapsed seconds and the parsed guest output."""

    def __init__(self, name, console_log, results_log, elapsed, timed_out, rc):
        self.name = name
        self.console_log = console_log
        self.results_log = results_log
        self.elapsed = elapsed
        self.timed_out = timed_out
        self.rc = rc
        self.console = _read(console_log)
        self.output = guest.parse(_read(results_log))
        self.reports = console.reports(self.console)

    def problems(self):
        """Why this run is not clean, as messages naming the log; [] when it is."""
        msgs = []
        if self.reports:
            no, line = self.reports[0]
            msgs.append('%s:%d: kernel report: %s (%d report line(s) in all)'
                        % (self.console_log, no, line.strip(), len(self.reports)))
        if self.timed_out:
            msgs.append('%s: guest hung: killed after %.0f s; last console line: %s'
                        % (self.console_log, self.elapsed, _last(self.console)))
        for e in self.output.errors:
            msgs.append('%s: guest init: %s' % (self.results_log, e))
        if not self.output.ended and not self.timed_out:
            msgs.append('%s: guest stopped before finishing (panic?); last console line: %s'
                        % (self.console_log, _last(self.console)))
        return msgs


def _read(path):
    try:
        with open(path, errors='replace') as f:
            return f.read()
    except FileNotFoundError:
        return ''


def _last(text):
    lines = [l for l in text.splitlines() if l.strip()]
    return lines[-1].strip() if lines else '(console empty)'


class QMP:
    """A QEMU Machine Protocol connection over a unix socket (-qmp unix:PATH)."""

    def __init__(self, path, timeout=30):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b''
        self.events = []
        self.receive()                      # the greeting
        self.execute('qmp_capabilities')

    def close(self):
        self.sock.close()

    def receive(self):
        """The next JSON message from QEMU."""
        while b'\n' not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise OSError('QMP connection closed')
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b'\n')
        return json.loads(line)

    def execute(self, command, **arguments):
        """Run one command; return its "return" value, raise OSError on "error"."""
        msg = {'execute': command}
        if arguments:
            msg['arguments'] = arguments
        self.sock.sendall(json.dumps(msg).encode() + b'\n')
        while True:
            m = self.receive()
            if 'event' in m:
                self.events.append(m)
            elif 'error' in m:
                raise OSError('%s: %s' % (command, m['error'].get('desc', m['error'])))
            elif 'return' in m:
                return m['return']

    def wait_event(self, name, timeout, **data):
        """Wait for event name whose data has the given items; return it, or None."""
        end = time.monotonic() + timeout
        while True:
            for m in self.events:
                if m['event'] == name and all(m.get('data', {}).get(k) == v
                                              for k, v in data.items()):
                    self.events.remove(m)
                    return m
            left = end - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                m = self.receive()
            except socket.timeout:
                return None
            if 'event' in m:
                self.events.append(m)


def hotplug_request(qmp, what):
    """Carry out a guest's "HIB ask WHAT" (unplug or plug of nvme0); return a log line.

    unplug returns once QEMU has removed the device (DEVICE_DELETED: the guest has
    ejected it), so that a following plug can reuse its id.
    """
    if what == 'unplug':
        qmp.execute('device_del', id=HOTPLUG_ID)
        ev = qmp.wait_event('DEVICE_DELETED', 120, device=HOTPLUG_ID)
        return 'device_del %s: %s' % (HOTPLUG_ID, 'deleted' if ev else
                                      'no DEVICE_DELETED within 120 s')
    if what == 'plug':
        qmp.execute('device_add', **HOTPLUG_DEVICE)
        return 'device_add %s: done' % json.dumps(HOTPLUG_DEVICE)
    return 'unknown request %r' % what


class _Asker(threading.Thread):
    """Answer the guest's "HIB ask WHAT" lines through QMP, in order, one at a time."""

    def __init__(self, results_log, qmp_path, proc, log):
        super().__init__(daemon=True)
        self.results_log, self.qmp_path, self.proc, self.log = results_log, qmp_path, proc, log
        self.done = 0

    def note(self, text):
        with open(self.log, 'a') as f:
            f.write('%.1f %s\n' % (time.monotonic(), text))

    def run(self):
        qmp = None
        while self.proc.poll() is None:
            time.sleep(0.5)
            asks = [l.split()[2] for l in _read(self.results_log).splitlines()
                    if l.startswith('HIB ask ') and len(l.split()) > 2]
            for what in asks[self.done:]:
                try:
                    qmp = qmp or QMP(self.qmp_path)
                    self.note('ask %s: %s' % (what, hotplug_request(qmp, what)))
                except (OSError, ValueError) as e:
                    self.note('ask %s: QMP error: %s' % (what, e))
                self.done += 1
        if qmp:
            qmp.close()


def pin_vcpus(pid, timeout=30):
    """Pin QEMU's vCPU thread n to host CPU n (modulo the host's CPUs), once the
    threads exist; its other threads stay free.  Returns {tid: cpu}.

    With two jobs on two vCPUs and QEMU's I/O thread on two host cores, the host
    scheduler otherwise moves the vCPU threads around and stacks both on one core now
    and then: in A/A pilots of 2026-12-01 that doubled the spread of numjobs=2 ratios."""
    ncpu = os.cpu_count() or 1
    pinned = {}
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            tids = os.listdir('/proc/%d/task' % pid)
        except OSError:
            break
        for t in tids:
            if int(t) in pinned:
                continue
            try:
                with open('/proc/%d/task/%s/comm' % (pid, t)) as f:
                    comm = f.read().strip()
            except OSError:
                continue
            # "CPU 0/TCG"
            if comm.startswith('CPU ') and comm[4:].split('/')[0].isdigit():
                cpu = int(comm[4:].split('/')[0]) % ncpu
                try:
                    os.sched_setaffinity(int(t), {cpu})
                except OSError:
                    continue
                pinned[int(t)] = cpu
        if pinned and len(pinned) >= _vcpus(pid):
            break
        time.sleep(0.05)
    return pinned


def _vcpus(pid):
    """The -smp count of QEMU process pid, from its command line (1 if unreadable)."""
    try:
        with open('/proc/%d/cmdline' % pid) as f:
            args = f.read().split('\0')
        return int(args[args.index('-smp') + 1].split(',')[0])
    except (OSError, ValueError, IndexError):
        return 1


def cat_initrd(out, parts):
    """Write the cpio archives parts, in order, into one initrd at out; return out.
    The kernel reads ACPI tables only from an uncompressed archive at the front."""
    with open(out, 'wb') as f:
        for part in parts:
            with open(part, 'rb') as p:
                f.write(p.read())
    return out


def boot(name, kernel, initrd, append, logdir, timeout, disk=None, monitor=None,
         hotplug=False, edu=False, iommu='virtio', tcg='multi', smp=2, pin=False,
         untrusted=False):
    """Boot once and wait for power-off or timeout; return a Run.

    With hotplug (see command()), a QMP socket is opened in logdir and the guest's
    "HIB ask unplug|plug" lines are answered through it (hotplug_request()); the
    exchange is logged in NAME.monitor.log.  pin: pin the vCPU threads (pin_vcpus()),
    noted in NAME.pin.log.
    """
    os.makedirs(logdir, exist_ok=True)
    con = os.path.join(logdir, name + '.console.log')
    res = os.path.join(logdir, name + '.results.log')
    for p in (con, res):
        if os.path.exists(p):
            os.unlink(p)
    full = 'console=ttyS0,115200 panic=-1 ' + append
    if hotplug and not monitor:
        monitor = os.path.join(logdir, name + '.monitor.sock')
    if monitor and os.path.exists(monitor):
        os.unlink(monitor)
    cmd = command(kernel, initrd, full, con, res, disk=disk, monitor=monitor,
                  hotplug=hotplug, edu=edu, iommu=iommu, tcg=tcg, smp=smp,
                  untrusted=untrusted)
    with open(os.path.join(logdir, name + '.cmd'), 'w') as f:
        f.write(' '.join(cmd) + '\n')
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    if pin:
        def note_pins():
            got = pin_vcpus(proc.pid)
            with open(os.path.join(logdir, name + '.pin.log'), 'w') as f:
                f.write(''.join('thread %d -> CPU %d\n' % kv for kv in sorted(got.items()))
                        or 'no vCPU thread found to pin\n')
        threading.Thread(target=note_pins, daemon=True).start()
    if hotplug:
        mlog = os.path.join(logdir, name + '.monitor.log')
        open(mlog, 'w').close()
        _Asker(res, monitor, proc, mlog).start()
    timed_out = False
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        timed_out = True
    elapsed = time.monotonic() - t0
    if out:
        with open(os.path.join(logdir, name + '.qemu.log'), 'wb') as f:
            f.write(out)
    if proc.returncode and not timed_out and not os.path.getsize(con):
        raise RunFailed('QEMU failed to start (rc %d): %s'
                        % (proc.returncode, out.decode(errors='replace').strip()[-500:]))
    return Run(name, con, res, elapsed, timed_out, proc.returncode)
