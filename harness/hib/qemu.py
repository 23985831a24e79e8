# SPDX-License-Identifier: GPL-2.0-only
"""Boot the guest: q35 under TCG, virtio-iommu, NVMe on a null or file backend.

The kernel console goes to CONSOLE (a log file), the guest init's "HIB ..." result lines
to a second serial port, RESULTS.  A run fails when QEMU outlives its timeout, the kernel
prints a report (WARNING, BUG, KASAN, lockdep, DMA-API, kmemleak: see console.py), the
guest never reaches "HIB end", or it says "HIB error".
"""
import os
import subprocess
import time

from . import console, guest

QEMU = 'qemu-system-x86_64'


class RunFailed(Exception):
    """A boot that did not produce a clean, complete result."""


def command(kernel, initrd, append, console_log, results_log, disk=None, smp=2,
            mem='2G', monitor=None):
    """Build the QEMU command line (a list) for one boot."""
    cmd = [QEMU, '-M', 'q35', '-cpu', 'max', '-smp', str(smp), '-m', mem,
           '-accel', 'tcg,thread=multi', '-nodefaults', '-display', 'none',
           '-no-reboot', '-kernel', kernel, '-initrd', initrd, '-append', append,
           '-serial', 'file:' + console_log, '-serial', 'file:' + results_log,
           '-device', 'virtio-iommu-pci']
    if disk:
        cmd += ['-drive', 'file=%s,format=raw,if=none,id=nvm,cache=writeback' % disk]
    else:
        cmd += ['-drive', 'driver=null-co,size=8G,read-zeroes=on,if=none,id=nvm']
    cmd += ['-device', 'nvme,serial=hib0001,drive=nvm']
    cmd += ['-monitor', 'unix:%s,server,nowait' % monitor if monitor else 'none']
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


def boot(name, kernel, initrd, append, logdir, timeout, disk=None, monitor=None,
         progress=None):
    """Boot once and wait for power-off or timeout; return a Run."""
    os.makedirs(logdir, exist_ok=True)
    con = os.path.join(logdir, name + '.console.log')
    res = os.path.join(logdir, name + '.results.log')
    for p in (con, res):
        if os.path.exists(p):
            os.unlink(p)
    full = 'console=ttyS0,115200 panic=-1 ' + append
    cmd = command(kernel, initrd, full, con, res, disk=disk, monitor=monitor)
    with open(os.path.join(logdir, name + '.cmd'), 'w') as f:
        f.write(' '.join(cmd) + '\n')
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
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
