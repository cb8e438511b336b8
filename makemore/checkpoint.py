"""Run directories: configs and tokenizer as JSON, checkpoints written atomically and loaded safely.

A run directory holds everything needed to rebuild its model:
    config.json      model name, model / data / train configs, the sha256 of the data's splits
    tokenizer.json   the vocabulary
    last.pt best.pt  model, optimizer, step, random states, --ema's average (tensors and plain data only)
    metrics.json     final figures;  samples.txt  a few samples;  events.*  TensorBoard
Checkpoints load with `weights_only=True`, so a crafted file cannot run code, and every write goes
to a temporary file that is renamed over the old one, so a crash never leaves half a checkpoint.
"""
import csv
import dataclasses
import json
import os
import pickle
import tempfile
import zipfile
from pathlib import Path

import torch

from makemore.config import from_dict
from makemore.data import DataConfig
from makemore.errors import MakemoreError
from makemore.models import MODELS, build_model
from makemore.tokenizer import CharTokenizer

FORMAT_VERSION = 1

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; two trainers in one run dir are then the user's to avoid
    fcntl = None


def write_atomic(path, write):
    """Call write(file) on a temporary file beside `path`, fsync it, then rename it over `path`."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
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
        raise MakemoreError(f"cannot make the folder {path} ({e.strerror or e}); pass an --out-dir where you can write") from None


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


class Run:
    """A run directory and what it describes: model name, configs and tokenizer."""

    def __init__(self, path, model_name, model_config, data_config, train_config, tokenizer):
        self.path = Path(path)
        self.model_name = model_name
        self.model_config = model_config
        self.data_config = data_config
        self.train_config = train_config
        self.tokenizer = tokenizer
        self.data_sha256 = None  # of the splits it was trained on (Corpus.digest); None in runs older than it
        self._lock = None

    @classmethod
    def create(cls, path, model_name, model_config, data_config, train_config, tokenizer):
        """A new run directory with its config and tokenizer written (the benchmarks make theirs so)."""
        run = cls(path, model_name, model_config, data_config, train_config, tokenizer)
        make_dir(run.path)
        run.save()
        return run

    def save(self):
        """Write config.json and tokenizer.json."""
        write_atomic(self.path / "tokenizer.json", lambda f: f.write(self.tokenizer.to_json().encode()))
        write_json(self.path / "config.json", {
            "format": FORMAT_VERSION,
            "model": self.model_name,
            "model_config": dataclasses.asdict(self.model_config),
            "data": dataclasses.asdict(self.data_config),
            "train": dataclasses.asdict(self.train_config),
            **({"data_sha256": self.data_sha256} if self.data_sha256 else {}),
        })

    @classmethod
    def open(cls, path, option="--run"):
        """The run in path; option is how the user named it, for the error when it is not a run."""
        from makemore.trainer import TrainConfig  # the trainer imports this module

        path = Path(path)
        config_path = path / "config.json"
        if not config_path.exists():
            raise MakemoreError(f"{path} is not a makemore run (no config.json); pass {option} runs/<name> from `makemore train`")
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise MakemoreError(f"{config_path} is not valid JSON ({e}); the run directory is damaged") from None
        if not isinstance(config, dict) or not isinstance(config.get("format"), int):
            raise MakemoreError(f"{config_path} is not a makemore run config; the run directory is damaged")
        if config["format"] > FORMAT_VERSION:
            raise MakemoreError(f"{path} was written by a newer makemore (format {config['format']}); upgrade makemore")
        name = config.get("model")
        if name not in MODELS:
            raise MakemoreError(f"{config_path} names an unknown model {name!r}; this makemore knows {', '.join(MODELS)}")
        tokenizer_path = path / "tokenizer.json"
        if not tokenizer_path.exists():
            raise MakemoreError(f"{path} has no tokenizer.json; the run directory is damaged")
        data = from_dict(DataConfig, config.get("data"), "data")
        data.data = config["data"]["data"]  # as stored: a .csv that an earlier makemore read as lines stays so
        run = cls(
            path,
            name,
            from_dict(MODELS[name].config, config.get("model_config"), "model_config"),
            data,
            from_dict(TrainConfig, config.get("train"), "train"),
            CharTokenizer.from_json(tokenizer_path.read_text(encoding="utf-8")),
        )
        run.data_sha256 = config.get("data_sha256")
        return run

    def load_corpus(self, log=print):
        """The run's data, split as it was when the run was trained: an error if it reads differently
        now (the file was edited, or MAKEMORE_DATA points elsewhere), as its val and test splits then
        hold other items, some of them perhaps trained on."""
        from makemore.data import load_corpus

        corpus = load_corpus(self.data_config, log, labeled=MODELS[self.model_name].model.task == "classify")
        if self.data_sha256 and corpus.digest() != self.data_sha256:
            raise MakemoreError(f"the data of {self.path} ({self.data_config.data}) has changed since the run was trained, "
                                "so its splits are not the ones it was trained and tested on; put the data back as it was, "
                                "or train a new run on it")
        return corpus

    def build_model(self):
        return build_model(self.model_name, self.model_config)

    def load_model(self, which="best", device="cpu"):
        """The model with the weights of best.pt or last.pt, in eval mode: their moving average if the run kept one (--ema)."""
        ckpt = load_checkpoint(self.path / f"{which}.pt")
        model = self.build_model()
        try:
            model.load_state_dict({**ckpt["model"], **(ckpt.get("ema") or {})})
        except RuntimeError as e:
            reason = str(e).strip().splitlines()[0]
            raise MakemoreError(
                f"checkpoint {self.path / (which + '.pt')} does not match the model in config.json ({reason}); "
                "the run directory is mixed up: retrain"
            ) from None
        return model.to(device).eval(), ckpt

    def locked(self):
        """Whether a trainer (this process or another) holds the run's lock now; see lock."""
        if fcntl is None or not (self.path / ".lock").exists():
            return False
        with open(self.path / ".lock") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(f, fcntl.LOCK_UN)
        return False

    def lock(self):
        """Hold an exclusive lock on the run while training; a second trainer is refused."""
        if fcntl is None:
            return
        self._lock = open(self.path / ".lock", "w")  # noqa: SIM115 - held open: the lock lasts as long as the file
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self._lock = None
            raise MakemoreError(f"run {self.path} is being trained by another process; wait for it, or pass another --name") from None
