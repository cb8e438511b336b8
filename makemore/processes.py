"""Signals, the same way in every command: SIGTERM (a scheduler's stop, `kill PID`) stops a command as Ctrl-C
does, with its cleanups run and a line said, and the processes a command starts (sweep workers, --nproc
ranks) hear the signals it gets, so none is left running on its own."""
import contextlib
import ctypes
import os
import signal
import sys
import threading

PARENT_ENV = "MAKEMORE_PARENT_PID"  # set by makemore for a process it starts, which ends when makemore does
PR_SET_PDEATHSIG = 1  # Linux's prctl option: the signal a process gets when its parent ends


def _terminate(signum, frame):
    raise KeyboardInterrupt  # as Ctrl-C: the same cleanups run, and the CLI says "interrupted" and exits 130


@contextlib.contextmanager
def terminated_as_interrupt():
    """SIGTERM raises KeyboardInterrupt meanwhile (in the main thread), so that cleanups run on a kill too; a
    SIGTERM that the process was started ignoring stays ignored."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is signal.SIG_IGN:
        yield
        return
    before = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def child_env(env):
    """The environment for a makemore process this one starts (see die_with_parent)."""
    return {**env, PARENT_ENV: str(os.getpid())}


def die_with_parent():
    """In a process that makemore started (a sweep worker, a --nproc rank): be killed when that parent ends,
    however it ends (kill -9 too, which it cannot pass on), as every process of a machine that dies ends with it;
    the trial or run is then resumed as after a crash. Linux only (prctl); elsewhere a no-op."""
    parent = os.environ.pop(PARENT_ENV, None)  # not inherited further
    if not parent or not parent.isdigit() or not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != int(parent):  # the parent ended before the line above
        os._exit(1)


@contextlib.contextmanager
def forwarding_signals(procs):
    """Meanwhile, SIGINT and SIGTERM that reach this process are passed on to procs (started each in its own
    session, so that a terminal's Ctrl-C reaches them once, from here) rather than raised here: each process
    stops as it does on a signal, and this one sees them end. A signal this process was started ignoring (a
    script's background job ignores Ctrl-C) stays ignored, as it does in the processes, which inherit that."""
    def forward(signum, frame):
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)
                if signal.getsignal(s) is not signal.SIG_IGN}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
