"""The one place that picks the device: cuda > mps > cpu, an explicit choice checked, the choice printed;
and how many threads torch computes with on the CPU."""
import contextlib
import os
import time
from pathlib import Path

import torch

from makemore.config import THREADS_ENV, check_threads, usable_cpus, world_size
from makemore.errors import MakemoreError

SAMPLE_SECONDS = 0.1  # how long the CPUs are watched to see which are busy
RECHECK_SECONDS = 30.0  # an automatic choice older than this is made again (a notebook runs for hours)
_torch_default = None  # torch's own thread count, read before makemore first changes it
_chosen = None  # (when, threads) of the last automatic choice


def pick_device(name="auto"):
    """The device to compute on; torch's CPU threads are set here too (use_threads), since every command
    that computes picks its device first."""
    use_threads()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise MakemoreError(f"unknown device '{name}'; pass --device auto, cpu, cuda, cuda:N or mps") from None
    if device.type not in ("cpu", "cuda", "mps"):  # torch knows more (meta, xpu, ...), which makemore does not run on
        raise MakemoreError(f"--device {name} is not one makemore trains on; pass --device auto, cpu, cuda, cuda:N or "
                            "mps")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise MakemoreError(f"--device {name} was asked for but no CUDA GPU is visible; pass --device auto or cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise MakemoreError(f"--device {name}: there are only {torch.cuda.device_count()} CUDA devices; pass cuda:0")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise MakemoreError(f"--device {name} was asked for but Apple MPS is not available; pass --device auto or cpu")
    return device


def described(device):
    """The device as a run's first line names it: on the CPU, with its thread count."""
    if device.type != "cpu":
        return str(device)
    threads = torch.get_num_threads()
    return f"cpu ({threads} thread{'s' if threads > 1 else ''})"


def free_memory(device):
    """Bytes free on the device: a CUDA GPU's, else the machine's available memory; None where unknown."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_precision(precision, device):
    """Training in bf16 needs CUDA: refused elsewhere, before a run writes anything."""
    if precision == "bf16" and device.type != "cuda":
        raise MakemoreError(f"--precision bf16 needs a CUDA device, and this run is on {device}; pass --precision auto "
                            "or fp32")


def autocast(device, precision="auto"):
    """bf16 autocast on CUDA (unless fp32 is asked for); full precision elsewhere, so a run trained
    in bf16 on a GPU still evaluates and samples on a CPU."""
    if device.type == "cuda" and precision != "fp32":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


# ----------------------------------------------------------------------------------------------
# threads on the CPU


def use_threads(threads=None):
    """Set how many threads torch computes with on the CPU and return it: `threads`, else $MAKEMORE_THREADS
    (--threads), else $OMP_NUM_THREADS, else one for each CPU that no other process keeps busy, at most
    torch's default. torch's default is one per core, and on a busy machine its threads then wait at every
    operation for the one that shares a core: on 2 cores with one taken, training runs 2-3x slower with
    2 threads than with 1, while on idle cores 2 threads are 1.3-1.7x faster (docs/benchmarks.md)."""
    global _torch_default, _chosen
    if _torch_default is None:
        _torch_default = torch.get_num_threads()
    if threads is None:
        threads = threads_from_env()
    if threads is None:
        if _chosen is None or time.monotonic() - _chosen[0] > RECHECK_SECONDS:
            # the processes that torchrun starts on this machine share its free CPUs
            sharing = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1) if world_size() > 1 else 1
            _chosen = time.monotonic(), max(1, min(_torch_default, free_cpus() // max(1, sharing)))
        threads = _chosen[1]
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


def threads_from_env():
    """The thread count the environment asks for (MAKEMORE_THREADS, then OMP_NUM_THREADS), or None."""
    for name in (THREADS_ENV, "OMP_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if not value:
            continue
        if not value.isdigit() or int(value) < 1:
            raise MakemoreError(f"{name}={value!r} is not a positive whole number of threads; set it to one "
                                f"(e.g. {name}=2), or unset it to let makemore choose")
        if name == "OMP_NUM_THREADS":  # set for other programs too: more than the CPUs is read as all of them
            return min(int(value), usable_cpus())
        return check_threads(int(value), name + "=")
    return None


def free_cpus():
    """How many of the CPUs this process may use are not kept busy by other processes, watched for a
    moment; all of them where the system does not say (no /proc/stat)."""
    cpus = usable_cpus()
    try:
        busy = busy_cpus(SAMPLE_SECONDS)
    except (OSError, ValueError):
        return cpus
    return max(1, min(cpus, round(cpus - busy)))


def busy_cpus(seconds):
    """How many of this process's CPUs other processes kept busy over `seconds` (a fraction: 1.0 is one
    CPU taken), from the kernel's per-CPU time counters; this process's own CPU time is left out."""
    mine = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    before, own_before, wall_before = cpu_times(mine), time.process_time(), time.monotonic()
    time.sleep(seconds)
    after, own, wall = cpu_times(mine), time.process_time() - own_before, time.monotonic() - wall_before
    busy = 0.0
    for cpu, (busy_after, total_after) in after.items():
        busy_before, total_before = before.get(cpu, (busy_after, total_after))
        if total_after > total_before:
            busy += (busy_after - busy_before) / (total_after - total_before)
    return max(0.0, busy - own / wall)


def cpu_times(cpus=None):
    """{cpu: (busy, total)} time counters from /proc/stat, for the CPUs in `cpus` (all when None)."""
    times = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu":
            continue
        cpu = int(name[3:])
        if cpus is None or cpu in cpus:
            counts = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
            times[cpu] = (sum(counts) - counts[3] - counts[4], sum(counts))
    return times
