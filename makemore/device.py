"""The one place that picks the device: cuda > mps > cpu, an explicit choice checked, the choice printed."""
import contextlib

import torch

from makemore.errors import MakemoreError


def pick_device(name="auto"):
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
    if device.type == "cuda" and not torch.cuda.is_available():
        raise MakemoreError(f"--device {name} was asked for but no CUDA GPU is visible; pass --device auto or cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise MakemoreError(f"--device {name}: there are only {torch.cuda.device_count()} CUDA devices; pass cuda:0")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise MakemoreError(f"--device {name} was asked for but Apple MPS is not available; pass --device auto or cpu")
    return device


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
