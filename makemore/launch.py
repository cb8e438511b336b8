"""`makemore train --nproc N`: start N processes of the same command on this machine, as torchrun
--nproc_per_node N starts them, and wait for them.

The processes find each other through torchrun's environment variables (WORLD_SIZE, RANK, LOCAL_RANK,
MASTER_ADDR, MASTER_PORT) on a free loopback port. Rank 0 keeps the terminal; the others print nothing
unless one of them fails alone, when its last error line is shown. Ctrl-C and SIGTERM reach every process
once, so they stop together at a step and save; if one process dies, the others (stuck waiting for it)
are stopped. The exit status is the processes': 0, 2 for an error, 130 when interrupted.
"""
import os
import socket
import subprocess
import sys
import tempfile
import time

from makemore.config import usable_cpus, world_size
from makemore.errors import MakemoreError
from makemore.processes import child_env, forwarding_signals

GRACE_SECONDS = 10.0  # how long the others may take to stop after one process has failed
COMMANDS = ("train", "finetune")  # the commands that train on several processes


def launched():
    """Whether this process is one of several that torchrun or --nproc started (see makemore.distributed)."""
    return world_size() > 1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def without_option(args, option):
    """args with `option VALUE` and `option=VALUE` left out."""
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == option:
            skip = True
        elif not arg.startswith(option + "="):
            out.append(arg)
    return out


def run(nproc, args=None):
    """Run `makemore ARGS` (this command's arguments, less --nproc) in nproc processes; returns the exit status."""
    cpus = usable_cpus()
    if nproc > cpus:  # each process loads torch and the data: more than the CPUs only crowd the machine
        raise MakemoreError(f"--nproc {nproc} is more processes than the {cpus} CPU(s) this process may use; pass "
                            f"--nproc {cpus} or fewer (one per GPU on a GPU machine)")
    args = without_option(sys.argv[1:] if args is None else args, "--nproc")
    port = free_port()
    procs, errors = [], []
    for rank in range(nproc):
        env = {**child_env(os.environ), "WORLD_SIZE": str(nproc), "RANK": str(rank), "LOCAL_RANK": str(rank),
               "LOCAL_WORLD_SIZE": str(nproc), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
        err = None if rank == 0 else tempfile.TemporaryFile()  # noqa: SIM115 - read after the process ends
        errors.append(err)
        # each in its own session, so that a terminal's Ctrl-C reaches them once, from here
        procs.append(subprocess.Popen([sys.executable, "-m", "makemore", *args], env=env, start_new_session=True,
                                      stdout=None if rank == 0 else subprocess.DEVNULL, stderr=err))
    with forwarding_signals(procs):
        codes, killed = wait_all(procs)
    failed = [rank for rank, code in enumerate(codes) if code != 0 and rank not in killed]
    if not failed:
        return 0
    first = failed[0]
    if first != 0 and errors[first] is not None:  # rank 0 said nothing of it: show what the failed one said
        errors[first].seek(0)
        lines = errors[first].read().decode(errors="replace").strip().splitlines()
        if lines:
            print(f"process {first}: {lines[-1]}", file=sys.stderr)
    for err in errors:
        if err is not None:
            err.close()
    code = codes[first]
    return code if code > 0 else 128 - code  # killed by signal N: 128 + N, as a shell reports it


def wait_all(procs):
    """Wait for every process; once one has failed, kill those that have not ended within GRACE_SECONDS
    (they wait for it at a collective). Returns the exit codes in rank order, and the ranks killed."""
    deadline, killed = None, set()
    while True:
        codes = [p.poll() for p in procs]
        if all(c is not None for c in codes):
            return codes, killed
        if deadline is None and any(c not in (None, 0) for c in codes):
            deadline = time.monotonic() + GRACE_SECONDS
        if deadline is not None and time.monotonic() > deadline:
            for rank, p in enumerate(procs):
                if p.poll() is None:
                    p.kill()
                    killed.add(rank)
            return [p.wait() for p in procs], killed
        time.sleep(0.05)
