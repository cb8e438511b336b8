"""Training on several processes at once (data parallelism), as torchrun starts them.

torchrun sets WORLD_SIZE, RANK and LOCAL_RANK in each process it starts; `makemore train` and `finetune`
then join one process group (gloo on the CPU, NCCL on CUDA, one GPU per process) and the trainer wraps
the model in DistributedDataParallel. Everything here is a no-op in a single process, so the code that
calls it reads the same either way:

- every process draws the same global batch and trains on its share of the rows (`rows`);
- scoring a split reads every size()-th batch from rank() (`shard`) and adds up the figures (`total`,
  `gathered`);
- rank 0 alone writes: the run's folder, checkpoints, TensorBoard, the log and the progress bar.
"""
import atexit
import datetime
import os

import torch
import torch.distributed as dist

from makemore.config import world_size
from makemore.errors import MakemoreError

TIMEOUT = datetime.timedelta(minutes=30)  # how long a process waits at a collective for the others


def requested():
    """Whether this process is one of several that torchrun (or `makemore train --nproc`) started."""
    return world_size() > 1


def active():
    return dist.is_available() and dist.is_initialized()


def size():
    """How many processes train together (1 without torchrun)."""
    return dist.get_world_size() if active() else 1


def rank():
    """This process's rank (0 in one process); torchrun's RANK before the group is joined."""
    if active():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0") or 0) if requested() else 0


def is_main():
    """Whether this process writes (the only one, or rank 0)."""
    return rank() == 0


def local_device(device):
    """The device of this process: under torchrun, each process on a machine takes the GPU of its local rank."""
    if not requested():
        return device
    if device.type == "cuda":
        if device.index is not None:
            raise MakemoreError(f"--device {device} names one GPU, and each process that torchrun starts takes the GPU "
                                "of its local rank; pass --device cuda or auto")
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if local >= torch.cuda.device_count():
            raise MakemoreError(f"torchrun started {os.environ.get('LOCAL_WORLD_SIZE', local + 1)} processes on this "
                                f"machine and it has {torch.cuda.device_count()} CUDA GPU(s); pass --nproc_per_node "
                                f"{torch.cuda.device_count()} or fewer")
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    if device.type != "cpu":
        raise MakemoreError(f"training on several processes runs on CUDA GPUs (NCCL) or the CPU (gloo), not {device}; "
                            "pass --device cpu, or train in one process")
    return device


def start(device):
    """Join the process group that torchrun set up, once per process; a no-op without torchrun."""
    if not requested() or active():
        return
    for name in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        if name not in os.environ:
            raise MakemoreError(f"WORLD_SIZE is set but {name} is not; start makemore with torchrun (e.g. torchrun "
                                "--nproc_per_node 2 -m makemore train ...), or unset WORLD_SIZE")
    if device.type == "cuda":
        dist.init_process_group("nccl", timeout=TIMEOUT, device_id=device)
    else:
        dist.init_process_group("gloo", timeout=TIMEOUT)
    atexit.register(finish)  # one group for the process's life: a script may train several runs in it


def finish():
    """Leave the process group (after the last collective)."""
    if active():
        dist.destroy_process_group()


def rows(n):
    """This process's share of a batch of n rows: a slice, the rows split as evenly as they go."""
    r, s = rank(), size()
    return slice(r * n // s, (r + 1) * n // s)


def shard(batches):
    """The batches of a split that this process scores: every size()-th, from its rank."""
    r, s = rank(), size()
    for i, batch in enumerate(batches):
        if i % s == r:
            yield batch


def total(value, device="cpu"):
    """The sum of a number over the processes (the number itself in one process), as a float64."""
    if not active():
        return value
    t = torch.tensor(float(value), dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.item()


def summed(tensor):
    """Sum a tensor over the processes, in place; returns it."""
    if active():
        dist.all_reduce(tensor)
    return tensor


def anyone(flag, device="cpu"):
    """Whether any process says yes (so that they all stop at the same step)."""
    if not active():
        return bool(flag)
    t = torch.tensor(int(bool(flag)), device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def gathered(parts):
    """Every process's list of parts, in the order that `shard` split them: the first part of rank 0, of rank 1,
    ..., then the second of each. Parts are CPU tensors, pickled between the processes of one run (never read
    from a file)."""
    if not active():
        return parts
    lists = [None] * size()
    dist.all_gather_object(lists, parts)
    longest = max(len(p) for p in lists)
    return [p[i] for i in range(longest) for p in lists if i < len(p)]


def each(value):
    """One value from each process, as a list in rank order (the value itself, in a list, in one process)."""
    if not active():
        return [value]
    values = [None] * size()
    dist.all_gather_object(values, value)
    return values


def from_main(value):
    """Rank 0's value, in every process (the value itself in one process)."""
    if not active():
        return value
    values = [value]
    dist.broadcast_object_list(values, src=0)
    return values[0]


def barrier():
    if active():
        dist.barrier()
