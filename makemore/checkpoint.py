"""Files that must survive a crash and files that must not run code: atomic writes (a temporary file,
fsynced, then renamed over the old one, so a crash never leaves half a checkpoint) and checkpoints
loaded with `weights_only=True`, so a crafted file cannot run code."""
import csv
import json
import os
import pickle
import tempfile
import zipfile
from pathlib import Path

import torch

from makemore.errors import MakemoreError

FORMAT_VERSION = 1

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; two trainers in one run dir are then the user's to avoid
    fcntl = None


def write_atomic(path, write):
    """Call write(file) on a temporary file beside `path`, fsync it, then rename it over `path`."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:  # a folder that cannot be written: say which
        raise MakemoreError(f"could not write {path} ({e.strerror or e}); check that {path.parent} can be written "
                            "(its permissions, read-only or full disk)") from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise MakemoreError(
                f"could not write {path} ({e.strerror or e}); the previous version of it is intact: "
                "free disk space (or fix permissions) and resume"
            ) from None
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself survive a power cut
        fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def make_dir(path):
    """Make a folder (and its parents) for a command's output, or say in one line why it cannot be made."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MakemoreError(f"cannot make the folder {path} ({e.strerror or e}); pass an --out-dir where you can "
                            "write") from None


def write_json(path, obj):
    write_atomic(path, lambda f: f.write((json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode()))


def write_csv(path, columns, rows, **options):
    """rows (dicts) under a header of columns; options go to csv.DictWriter (extrasaction="ignore": drop other keys)."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, columns, **options)
        writer.writeheader()
        writer.writerows(rows)


def save_checkpoint(path, state):
    write_atomic(path, lambda f: torch.save({"format": FORMAT_VERSION, **state}, f))


def load_checkpoint(path, mmap=False):
    """A checkpoint's dict, tensors on the CPU; mmap: read its tensors from the file only when touched."""
    path = Path(path)
    if not path.exists():
        raise MakemoreError(f"checkpoint {path} does not exist; train first, or pass --checkpoint last")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as e:
        reason = str(e).strip().splitlines()[0]
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


def check_owner(ckpt, run_id, path):
    """A checkpoint of another run, copied over this one's (the same model, so its weights would load), is
    refused rather than resumed or scored as this run's."""
    owner = ckpt.get("run_id")
    if run_id and owner and owner != run_id:
        raise MakemoreError(f"{path} is a checkpoint of another run (run id {owner}; this run is {run_id}); put this "
                            "run's own checkpoint back, or train the run anew")
