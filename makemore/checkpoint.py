"""Checkpoints: written atomically through makemore.files (a crash never leaves half of one) and loaded with
`weights_only=True`, so that a crafted file cannot run code."""
import pickle
import zipfile
from pathlib import Path

import torch

from makemore.errors import MakemoreError
from makemore.files import write_file

FORMAT_VERSION = 1


def save_checkpoint(path, state):
    write_file(path, lambda f: torch.save({"format": FORMAT_VERSION, **state}, f))


def load_checkpoint(path, mmap=False):
    """A checkpoint's dict, tensors on the CPU; mmap: read its tensors from the file only when touched."""
    path = Path(path)
    if not path.exists():
        raise MakemoreError(f"checkpoint {path} does not exist; train first, or pass --checkpoint last")
    if path.is_file() and not zipfile.is_zipfile(path):  # makemore's checkpoints are torch's zip archives
        raise MakemoreError(f"checkpoint {path} is damaged or not a checkpoint (it is not the zip archive that "
                            "makemore writes); use the run's other checkpoint (--checkpoint best or last) or retrain")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as e:
        reason = unpickling_reason(e)
        raise MakemoreError(
            f"checkpoint {path} was refused: it holds objects other than tensors and plain data ({reason}); "
            "load only checkpoints that makemore wrote"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise MakemoreError(
            f"checkpoint {path} is unreadable, truncated or corrupt ({reason}); "
            "use the run's other checkpoint (--checkpoint best or last) or retrain"
        ) from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("format"), int) or "model" not in ckpt:
        raise MakemoreError(f"checkpoint {path} is not a makemore checkpoint; pass a run that makemore wrote")
    if ckpt["format"] > FORMAT_VERSION:
        raise MakemoreError(
            f"checkpoint {path} has format {ckpt['format']}, newer than this makemore reads ({FORMAT_VERSION}); "
            "upgrade makemore"
        )
    return ckpt


def unpickling_reason(error):
    """What torch's weights-only loader refused, without its advice to load the file with weights_only=False
    (unsafe for a file one did not make, and no cure for a damaged one)."""
    advice = ("Weights only load failed", "Please file an issue", "Check the documentation")
    lines = [line.strip() for line in str(error).splitlines() if line.strip() and not line.strip().startswith(advice)]
    reason = lines[0].removeprefix("WeightsUnpickler error:").strip() if lines else ""
    return reason.rstrip(".") or "an object the safe loader does not read"


def check_owner(ckpt, run_id, path):
    """A checkpoint of another run, copied over this one's (the same model, so its weights would load), is
    refused rather than resumed or scored as this run's."""
    owner = ckpt.get("run_id")
    if run_id and owner and owner != run_id:
        raise MakemoreError(f"{path} is a checkpoint of another run (run id {owner}; this run is {run_id}); put this "
                            "run's own checkpoint back, or train the run anew")
