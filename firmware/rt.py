"""Real-time footing for the audio thread: SCHED_FIFO, locked memory, no garbage collector.

What the system allows is taken, what it refuses is reported once as a clear warning (the box's
systemd unit grants ``LimitRTPRIO`` and ``LimitMEMLOCK``; a desktop shell usually does not),
and nothing here is ever fatal. :func:`quiet_gc` keeps the cyclic collector out of the loop:
everything allocated before the loop is frozen into the permanent generation and automatic
collection is off while the loop runs; the loop itself creates no reference cycles.

Where configured, the loop also holds the kernel's CPU latency request (:class:`CpuLatencyHold`,
``/dev/cpu_dma_latency``), the knob real-time audio set-ups use so that an idle CPU does not
sit in an idle state it takes long to leave.

Two side effects of that footing are handled here too, because each stalled the loop at every
capture start and stop: locked memory makes a new thread's stack cost its full size at creation
(so threads made later get :data:`THREAD_STACK_BYTES`), and a real-time policy is inherited by
child processes (so :func:`children_start_ordinary` before starting a CPU-bound worker).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import os
import sys
import threading

# Above every normal process (control, web, panel), below the kernel's watchdog and migration
# threads (99). The loop sleeps in poll() between periods, so it never starves the card's IRQ thread.
RT_PRIORITY = 70
HELPER_PRIORITY = 40  # meter publisher, control channel: short bursts of work
LOADER_PRIORITY = 1  # the chain loader: above ordinary processes only, and only for a while
MCL_CURRENT, MCL_FUTURE = 1, 2
# Stack of every Python thread started after mlockall(MCL_FUTURE). With MCL_FUTURE a new mapping
# is populated and locked at once, so creating a thread with glibc's default 8 MiB stack zeroes
# 8 MiB inside pthread_create, which CPython calls holding the GIL: the audio loop waited 4-9 ms
# for the GIL at every capture start and stop (2026-11-23, docs/engine.md). 512 KiB costs ~0.1 ms.
THREAD_STACK_BYTES = 512 * 1024
GIL_SWITCH_S = 0.001  # bound the time a non-audio thread may keep the audio thread waiting for the GIL


def enter_realtime(priority: int = RT_PRIORITY, lock_memory: bool = True) -> dict:
    """Ask for SCHED_FIFO at ``priority`` for the calling thread and lock all memory.

    Returns ``{"sched_fifo": bool, "mlockall": bool, "warnings": [str, ...]}``; each warning is
    one sentence saying what was refused and how to allow it.
    """
    out = {"sched_fifo": False, "mlockall": False, "warnings": []}
    sys.setswitchinterval(GIL_SWITCH_S)
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        out["sched_fifo"] = True
    except (PermissionError, OSError) as e:
        out["warnings"].append(
            f"real-time scheduling (SCHED_FIFO {priority}) refused ({e.strerror or e}); the audio loop runs at "
            "normal priority and may drop out under load. Allow it with LimitRTPRIO=95 in the systemd unit or "
            "an rtprio entry in /etc/security/limits.d/.")
    if lock_memory:
        libc_name = ctypes.util.find_library("c")
        try:
            libc = ctypes.CDLL(libc_name, use_errno=True)
            if libc.mlockall(MCL_CURRENT | MCL_FUTURE) == 0:
                out["mlockall"] = True
                threading.stack_size(THREAD_STACK_BYTES)  # threads started from now on (see above)
            else:
                err = ctypes.get_errno()
                out["warnings"].append(
                    f"locking memory (mlockall) refused ({os.strerror(err)}); pages of the engine may be swapped "
                    "out. Allow it with LimitMEMLOCK=infinity in the systemd unit.")
        except OSError as e:
            out["warnings"].append(f"locking memory is not available here ({e})")
    return out


CPU_LATENCY_DEVICE = "/dev/cpu_dma_latency"


class CpuLatencyHold:
    """The kernel's PM QoS request "wake any CPU within ``us`` microseconds", held while open.

    The kernel keeps the request for as long as the file stays open and drops it when it is
    closed (also when the process dies: a killed engine leaves nothing behind). With 0 the
    idle governor picks the polling state, so a timer or interrupt finds the CPU awake; the
    price is an idle CPU that spins instead of sleeping (power, heat). It is off by default
    (``[audio] cpu_latency_us = -1``): in this project's virtual machine a spinning virtual
    CPU loses the host's wake-up preference, and wake-ups more than 2.7 ms late (an xrun at
    128 x 2) came about four times as often with the hold as without it (bench/wake_latency.py,
    docs/reliability.md "The wake-up side").
    """

    def __init__(self, us: int, path: str = CPU_LATENCY_DEVICE):
        self.us = int(us)
        self.path = path
        self.held = False
        self.warning = ""
        self._fd: int | None = None

    def __enter__(self) -> CpuLatencyHold:
        if self.us < 0:
            return self
        try:
            fd = os.open(self.path, os.O_WRONLY)
        except OSError as e:
            self.warning = (f"holding CPU wake-up latency at {self.us} us refused ({e.strerror or e}); idle CPUs "
                            f"may wake late and drop out a period now and then. Allow writing {self.path} (root, "
                            "or a udev rule for the audio group), or set [audio] cpu_latency_us = -1 to silence this.")
            return self
        try:
            os.write(fd, self.us.to_bytes(4, sys.byteorder, signed=True))
        except OSError as e:
            os.close(fd)
            self.warning = f"holding CPU wake-up latency at {self.us} us failed ({e.strerror or e})"
            return self
        self._fd, self.held = fd, True
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd, self.held = None, False


def boost_helper_thread(priority: int = HELPER_PRIORITY) -> bool:
    """SCHED_FIFO below the audio thread for a helper thread that takes the GIL now and then.

    The meter publisher and the control channel hold the GIL for short moments while the loop
    runs. If an ordinary process pre-empted one of them while it held the GIL, the audio thread
    would wait for the GIL for a whole scheduler slice and drop out; at a real-time priority
    below the loop's they only yield to the loop (which gets the GIL back within
    ``GIL_SWITCH_S``). Only for threads that do little work. False when not allowed.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        return True
    except (PermissionError, OSError):
        return False


def children_start_ordinary() -> None:
    """Processes started from the calling thread begin as ordinary processes (SCHED_RESET_ON_FORK).

    A real-time policy is inherited across fork and exec, and ``nice`` does nothing to a
    SCHED_FIFO process: the capture analysis worker, started from a FIFO 40 thread, ran its
    second of CPU-bound analysis at FIFO 40, and the kernel's real-time throttling (at most
    95 % of each second for real-time tasks) then held every real-time thread on that CPU --
    the audio loop included -- for up to 50 ms. The calling thread keeps its own priority.
    """
    with contextlib.suppress(PermissionError, OSError, AttributeError):
        policy = os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK
        if policy in (os.SCHED_FIFO, os.SCHED_RR):
            os.sched_setscheduler(0, policy | os.SCHED_RESET_ON_FORK, os.sched_getparam(0))


def demote_thread(tid: int) -> None:
    """Put thread ``tid`` back to ordinary scheduling (a no-op if it has exited)."""
    with contextlib.suppress(PermissionError, OSError):
        os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))


def thread_ids() -> set[int]:
    """Kernel ids of this process's threads (``/proc/self/task``)."""
    try:
        return {int(t) for t in os.listdir("/proc/self/task")}
    except OSError:
        return set()


def lift_threads(tids, priority: int = RT_PRIORITY) -> int:
    """Give threads started by an audio device's library (e.g. the ALSA JACK plugin's process
    thread, which moves every period) the loop's priority; returns how many were lifted."""
    lifted = 0
    for tid in tids:
        try:
            os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(priority))
            lifted += 1
        except (PermissionError, OSError):
            pass
    return lifted


def pin_thread(cpu: int) -> str | None:
    """Run the calling thread on CPU ``cpu`` alone; None when done, else a warning saying why not.

    For the audio loop on a core of its own: with ``isolcpus=N`` (and ``irqaffinity`` keeping
    interrupts elsewhere) on the kernel command line, nothing else is scheduled there, so neither
    the web server, a mastering job nor the kernel's housekeeping shares its caches or delays
    its wake-up. An isolated CPU is outside every process's default affinity, so ``cpu`` is
    checked against the CPUs that exist, not the ones this process may use now. Only the calling
    thread moves (Linux's affinity is per thread); threads it starts later inherit it, which is
    why the engine pins the loop after its helper threads exist.
    """
    if cpu < 0:
        return None
    present = os.cpu_count() or 1
    if cpu >= present:
        return (f"the audio loop cannot run on CPU {cpu}: this machine has CPUs 0..{present - 1}; "
                "it runs on any CPU ([audio] cpu)")
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError as e:
        return f"running the audio loop on CPU {cpu} refused ({e.strerror or e}); it runs on any CPU ([audio] cpu)"
    return None


def leave_realtime() -> None:
    """Back to normal scheduling for the calling thread (used before the engine exits)."""
    with contextlib.suppress(PermissionError, OSError):
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


@contextlib.contextmanager
def quiet_gc():
    """No cyclic garbage collection inside the block: freeze what exists, disable, restore after."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.unfreeze()
        if was_enabled:
            gc.enable()
