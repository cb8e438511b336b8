"""Run folders: create, open and resume them, build a run's model and data from its configs, train it,
write what a finished run leaves, and read back runs that other commands use (ensembles, the body a
classifier is finetuned from).

A run directory holds everything needed to rebuild its model:
    config.json      model name, model / data / train configs, the sha256 of the data's splits
    tokenizer.json   the vocabulary
    last.pt best.pt  model, optimizer, step, random states, --ema's average (see makemore.trainer)
    metrics.json     final figures;  samples.txt  a few samples (or confusion.png);  events.*  TensorBoard
"""
import copy
import dataclasses
import json
import math
import random
import shutil
import uuid
from contextlib import contextmanager
from dataclasses import asdict, fields
from pathlib import Path

import torch
from tqdm.auto import tqdm

from makemore import distributed
from makemore.checkpoint import FORMAT_VERSION, check_owner, load_checkpoint
from makemore.config import DataConfig, TrainConfig, from_dict, option_name, read_small
from makemore.data import load_corpus, make_batches, resolve
from makemore.device import check_precision, described, free_memory, pick_device
from makemore.errors import MakemoreError
from makemore.files import adopt, check_outputs, fcntl, make_dir, open_appending, write_json, write_text
from makemore.models import CUSTOM, MODELS, CustomConfig, build_model, model_config, stored_config
from makemore.models.base import check_contract
from makemore.tasks import task_of
from makemore.tokenizer import CharTokenizer, describe_char
from makemore.trainer import Trainer

# the files a run's folder holds that makemore writes
RUN_FILES = ("config.json", "tokenizer.json", "last.pt", "best.pt", "metrics.json", "samples.txt", "confusion.png",
             "bigram.png", "embeddings.png", "activations.png")


class Run:
    """A run directory and what it describes: model name, configs and tokenizer. module: the model, for a
    model of the user's own (which makemore cannot build from its config)."""

    def __init__(self, path, model_name, model_config, data_config, train_config, tokenizer, module=None):
        self.path = Path(path)
        self.module = module
        self.model_name = model_name
        self.model_config = model_config
        self.data_config = data_config
        self.train_config = train_config
        self.tokenizer = tokenizer
        self.data_sha256 = None  # of the splits it was trained on (Corpus.digest); None in runs older than it
        self.run_id = uuid.uuid4().hex[:16]  # its checkpoints carry it too, so that another run's are refused
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
        write_text(self.path / "tokenizer.json", self.tokenizer.to_json())
        write_json(self.path / "config.json", {
            "format": FORMAT_VERSION,
            "model": self.model_name,
            "model_config": dataclasses.asdict(self.model_config),
            "data": dataclasses.asdict(self.data_config),
            "train": dataclasses.asdict(self.train_config),
            **({"data_sha256": self.data_sha256} if self.data_sha256 else {}),
            **({"run_id": self.run_id} if self.run_id else {}),
        })

    @classmethod
    def open(cls, path, option="--run"):
        """The run in path; option is how the user named it, for the error when it is not a run."""
        path = Path(path)
        config_path = path / "config.json"
        if not config_path.exists():
            raise MakemoreError(f"{path} is not a makemore run (no config.json); pass {option} runs/<name> from "
                                "`makemore train`")
        try:
            config = json.loads(read_small(config_path, "the run's config"))
        except json.JSONDecodeError as e:
            raise MakemoreError(f"{config_path} is not valid JSON ({e}); the run directory is damaged") from None
        if not isinstance(config, dict) or not isinstance(config.get("format"), int):
            raise MakemoreError(f"{config_path} is not a makemore run config; the run directory is damaged")
        if config["format"] > FORMAT_VERSION:
            raise MakemoreError(f"{path} was written by a newer makemore (format {config['format']}); upgrade makemore")
        name = config.get("model")
        if name not in MODELS and name != CUSTOM:
            raise MakemoreError(f"{config_path} names an unknown model {name!r}; this makemore knows "
                                f"{', '.join(MODELS)}")
        tokenizer_path = path / "tokenizer.json"
        if not tokenizer_path.exists():
            raise MakemoreError(f"{path} has no tokenizer.json; the run directory is damaged")
        run = cls(
            path,
            name,
            stored_config(name, config.get("model_config")),
            from_dict(DataConfig, config.get("data"), "data"),
            from_dict(TrainConfig, config.get("train"), "train"),
            CharTokenizer.from_json(read_small(tokenizer_path, "the run's tokenizer")),
        )
        vocab = getattr(run.model_config, "vocab_size", None)
        if vocab and vocab != run.tokenizer.vocab_size:  # a model of other characters would read them wrongly
            raise MakemoreError(f"{tokenizer_path} holds {run.tokenizer.vocab_size} characters and the model of "
                                f"{config_path} {vocab}; the run directory is damaged")
        run.data_sha256 = config.get("data_sha256")
        run.run_id = config.get("run_id")  # None in runs older than it: their checkpoints are not checked
        return run

    def load_corpus(self, log=print):
        """The run's data, split as it was when the run was trained: an error if it reads differently
        now (the file was edited, or MAKEMORE_DATA points elsewhere), as its val and test splits then
        hold other items, some of them perhaps trained on."""
        source = self.data_config.data.removeprefix("hf:")
        if Path(source).is_absolute() and not Path(source).exists():  # the run reads its data where it was
            raise MakemoreError(f"{source}, the data of {self.path}, does not exist any more; put it back where the "
                                "run read it")
        corpus = load_corpus(self.data_config, log, labeled=self.task.labeled, as_recorded=True)
        if self.data_sha256 and corpus.digest() != self.data_sha256:
            raise MakemoreError(f"the data of {self.path} ({self.data_config.data}) has changed since the run was "
                                "trained, so its splits are not the ones it was trained and tested on; put the data "
                                "back as it was, or train a new run on it")
        return corpus

    @property
    def task(self):
        """What the run's model does (makemore.tasks): a language model's or a classifier's."""
        return task_of(self.model_name)

    def build_model(self, device="cpu", copies=1, shape=None):
        """The run's model, untrained (a model of the user's own: the one given, as it is; a classifier with
        a body of the user's own: copies of it). Its size is checked first (check_size), on the device it
        will go to, with `copies` of its weights held (4 to train: weights, gradients, AdamW's moments).
        shape: the model's shape() when the caller has it already."""
        check_size(self.shape() if shape is None else shape, device, copies, self.path)
        return build_model(self.model_name, self.model_config, self.module)

    def shape(self):
        """{parameter or buffer name: shape} of the run's model, found without allocating it (built on torch's
        meta device), so that a config edited to an enormous size is refused rather than built."""
        if self.model_name == CUSTOM:  # the user's own module, built already
            return {k: tuple(v.shape) for k, v in self.module.state_dict().items()} if self.module else {}
        try:
            with torch.device("meta"):
                model = build_model(self.model_name, self.model_config, self.module)
        except (RuntimeError, NotImplementedError):  # a model that must compute to be built: not sized here
            return {}
        return {k: tuple(v.shape) for k, v in model.state_dict().items()}

    def load_model(self, which="best", device="cpu"):
        """The model with the weights of best.pt or last.pt, in eval mode: their moving average if the run
        kept one (--ema)."""
        ckpt = load_checkpoint(self.path / f"{which}.pt")
        check_owner(ckpt, self.run_id, self.path / f"{which}.pt")
        expected = self.shape()
        found = {k: tuple(v.shape) for k, v in ckpt["model"].items()}
        if expected and found != expected:  # before a model is built: its config may be what is wrong
            wrong = sorted(set(found) ^ set(expected)) or [k for k in expected if found[k] != expected[k]]
            raise MakemoreError(f"checkpoint {self.path / (which + '.pt')} does not match the model in config.json "
                                f"({wrong[0]}: {found.get(wrong[0])} in the checkpoint, {expected.get(wrong[0])} by "
                                "the config); the run directory is mixed up: retrain")
        model = self.build_model(device, shape=expected)  # sized once, on the meta device
        model = copy.deepcopy(model) if model is self.module else model  # the user's own stays as it is
        try:
            model.load_state_dict({**ckpt["model"], **(ckpt.get("ema") or {})})
        except RuntimeError as e:
            reason = str(e).strip().splitlines()[0]
            raise MakemoreError(
                f"checkpoint {self.path / (which + '.pt')} does not match the model in config.json ({reason}); "
                "the run directory is mixed up: retrain"
            ) from None
        return model.to(device).eval(), ckpt

    def adopt_files(self):
        """Count the run's files as makemore's own (see makemore.files): for a run written before run folders kept
        a record of them, so that it can be resumed and inspected. A run that has a record keeps it."""
        adopt(self.path, RUN_FILES)

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
        self._lock = open_appending(self.path / ".lock")  # held open: the lock lasts as long as the file
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self._lock = None
            raise MakemoreError(f"run {self.path} is being trained by another process; wait for it, or pass another "
                                "--name") from None


def check_size(shape, device, copies, where):
    """Refuse, in one line, a model whose weights (times `copies`) would not fit in the memory the device has
    free, before anything is allocated."""
    n = sum(math.prod(dims) for dims in shape.values())
    need, free = 4 * n * copies, free_memory(device)  # fp32
    if free is not None and need > free:
        raise MakemoreError(f"the model of {where} has {n:,} parameters, which need {need / 2**30:,.1f} GiB, and "
                            f"{device} has {free / 2**30:,.1f} GiB free; pass smaller sizes (--n-hidden, --n-embd, "
                            "--n-layer, --block-size)")


def holds_run(path):
    """Whether the folder holds a run of makemore's: a config.json that makemore wrote (not merely one of that
    name: a Hugging Face model's folder has a config.json and a tokenizer.json too)."""
    config = Path(path) / "config.json"
    try:
        if not config.is_file() or config.stat().st_size > 1_000_000:
            return False
        recorded = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(recorded, dict) and {"format", "model", "model_config", "data"} <= recorded.keys()


LARGE_VOCAB = 1000  # distinct characters past which a run says what they cost and how to have fewer


def large_vocab_note(counts):
    """What a vocabulary of many characters costs (each is a row of the embedding table and a column of the
    output layer) and the --min-char-count that keeps LARGE_VOCAB of them."""
    values = list(counts.values())
    kept = {n: sum(c >= n for c in values) for n in (2, 3, 5, 10, 20, 50, 100, 200, 500, 1000, 10_000, 100_000)}
    kept = {n: k for n, k in kept.items() if k > 0}
    keep = min((n for n, k in kept.items() if k <= LARGE_VOCAB), default=max(kept, default=2))
    return (f"note: the data holds {len(values):,} distinct characters, each with its own id: a row of the embedding "
            f"table and a column of the output layer, which makes the model large and slow; pass --min-char-count "
            f"{keep:,} to keep the {kept.get(keep, 0):,} seen at least {keep:,} times in the train split and read "
            "the rest as one unknown-character id")


def check_new_run(path):
    """A new run goes into a folder that does not exist yet, is empty, or holds a run of makemore's that saved
    no checkpoint; a folder with anything else in it is someone else's, and makemore leaves it alone."""
    if (path / "last.pt").exists() or (path / "best.pt").exists():
        raise MakemoreError(f"run {path} already exists; pass --resume to continue it, or another --name")
    if path.exists() and not path.is_dir():
        raise MakemoreError(f"{path} is a file, not a run's folder; pass another --name or --out-dir")
    if path.is_dir() and not holds_run(path) and any(p.name != ".lock" for p in path.iterdir()):
        raise MakemoreError(f"{path} holds files that are not a makemore run's, and makemore writes only into folders "
                            "of its own; pass another --name or --out-dir")


def run_training(run_dir, model_name=None, model_overrides=None, data_config=None, train_overrides=None,
                 resume=False, log=tqdm.write, on_validate=None, pretrained=None, backward=None, module=None,
                 progress=None, leak_check="refuse"):
    """Train a new run in run_dir, or resume the one there. Returns (why it stopped, metrics or None).

    A new run takes model_name, model_overrides (fields of the model's config) and data_config;
    its TrainConfig is the defaults, then the model's own (see MODELS), then train_overrides.
    pretrained: a language-model run whose body and tokenizer a new classifier starts from; backward: a
    language-model run trained with --reverse, the second body of a bidirectional classifier.
    A resumed run takes its configs from its directory; train_overrides (e.g. a larger
    max_steps) may change how it goes on. on_validate(step, criterion) hears every validation: the
    val loss, a classifier's val error rate (a sweep prunes poor trials from it by raising).
    module: a model of the user's own (an nn.Module), trained as model_name CUSTOM, or, with pretrained, the
    model of that run (a classifier's body); a resumed run of either needs it again. progress: show a
    progress bar (None: when the output is a terminal). leak_check: what a pretraining text that holds val or
    test items of the classifier does (see check_no_leak).

    Under torchrun every process calls this alike; rank 0 alone logs and writes (see makemore.distributed).
    """
    if not distributed.is_main():
        log, progress = (lambda *args: None), False
    if resume:
        run, bodies = Run.open(run_dir), []
        run.module = module
        if not (run.path / "last.pt").exists():
            raise MakemoreError(f"run {run.path} has no last.pt to resume from; train it without --resume")
        run.train_config = TrainConfig(**{**asdict(run.train_config), **(train_overrides or {})})
        corpus = run.load_corpus(log)
    else:
        run, corpus, bodies = new_run(run_dir, model_name, model_overrides, data_config, train_overrides, log,
                                      pretrained, backward, module, leak_check)

    config = run.train_config
    model, batches, device = built(run, corpus, log, None if resume else bodies)
    run.run_id = distributed.from_main(run.run_id)  # a new run's id is drawn in each process: rank 0's is the run's
    main = distributed.is_main()
    made = main and not resume and not run.path.exists()
    with removed_on_failure(run.path, made):
        if main:
            make_dir(run.path)
            run.lock()  # before anything is written: a second trainer of this run stops here
            if not resume:
                check_new_run(run.path)
            run.adopt_files()
        trainer = Trainer(model, batches, config, run.path, device, run.task.validation(batches, config), log,
                          on_validate, progress, run.task.loss_tag, run_id=run.run_id)
        if resume:
            trainer.resume()  # another run's checkpoint copied here is told as such, first
            if main:  # a link or a file of the user's among the run's files: told now, not after training
                check_outputs(run.path, *RUN_FILES)
            if trainer.step > config.max_steps:  # checked before the run's config is rewritten
                raise MakemoreError(f"run {run.path} is at step {trainer.step:,}, past --max-steps "
                                    f"{config.max_steps:,}; pass a larger --max-steps to train on")
        if main:
            run.save()  # a resumed run's config records the training options it goes on with
        n_params = sum(p.numel() for p in model.parameters())
        sizes = ", ".join(f"{name} {len(b):,}" for name, b in batches.items())
        unit = {"lines": "items", "stream": "sequences", "labeled": "labeled items"}[corpus.kind]
        steps = (f"{config.max_steps:,} steps of {config.batch_size} at lr {config.lr:g}" if config.max_steps
                 else "no training steps")  # a bigram fitted from counts
        processes = f" x {distributed.size()} processes" if distributed.size() > 1 else ""
        log(f"run {run.path}: {run.model_name}, {n_params:,} parameters, vocab {run.tokenizer.vocab_size}, "
            f"{unit}: {sizes}, device {described(device)}{processes}, {steps}")
        batch_norm = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
        if distributed.size() > 1 and batch_norm:
            log(f"note: BatchNorm normalises each process's {config.batch_size // distributed.size()} rows in "
                "training, so the figures differ a little from one process's")
        if corpus.kind == "stream" and "val" in batches and batches["val"].long:
            log(f"data: every validation reads all {batches['val'].n_targets + 1:,} characters of the val split; "
                f"pass a smaller --val-frac (now {run.data_config.val_frac:g}) to validate faster")

        reason = trainer.train()
    if reason == "interrupted":
        log(f"interrupted at step {trainer.step}; last.pt is saved. Continue with: "
            f"makemore train --resume --name {run.path.name} --out-dir {run.path.parent}")
        return reason, None

    best, _ = run.load_model("best", device)
    metrics = final_metrics(run, best, batches, trainer, device, corpus, reason)
    if main:
        write_outputs(run, best, metrics, corpus)
    distributed.barrier()  # the run's files are all there when any process returns
    figures = " | ".join(f"{k.removesuffix('_loss')} {v:.4f}" for k, v in metrics.items() if k.endswith("_loss"))
    log(f"done ({reason}) after {trainer.step:,} steps, {trainer.seconds:.0f} s: best model (step "
        f"{trainer.best_step:,}) {figures} {metrics['unit']}")
    for line in run.task.summary(metrics, batches):
        log(line)
    return reason, metrics


@contextmanager
def removed_on_failure(path, made):
    """A new run's folder, made by this process, is removed again when training fails (an error, a second
    Ctrl-C) before the first checkpoint: a half-made run (config and tokenizer, no weights) is not left behind to
    be listed as "not trained" and to be refused as the folder of the next run."""
    try:
        yield
    except BaseException:
        if made and not (path / "last.pt").exists():
            shutil.rmtree(path, ignore_errors=True)
        raise


def final_metrics(run, model, batches, trainer, device, corpus, reason):
    """metrics.json: the task's figures of every split of the best model (see makemore.tasks), and how
    the training went."""
    config = run.train_config
    return {
        **run.task.metrics(model, batches, config, corpus),
        "best_step": trainer.best_step,
        "steps": trainer.step,
        "stopped": reason,
        "seconds": round(trainer.seconds, 2),
        "train_chars_per_s": round(trainer.chars / max(trainer.seconds, 1e-9)),
        "device": str(device),
        **({"processes": distributed.size()} if distributed.size() > 1 else {}),
        "parameters": sum(p.numel() for p in model.parameters()),
        "config": asdict(config),
    }


def built(run, corpus, log, bodies):
    """The run's model on its device, seeded, and its batches: (model, batches, device). bodies: None for a
    resumed run, whose weights come from last.pt; else the bodies of new_run, loaded before model.prepare."""
    config = run.train_config
    device = distributed.local_device(pick_device(config.device))
    check_precision(config.precision, device)
    distributed.start(device)
    if config.batch_size < distributed.size():
        raise MakemoreError(f"--batch-size {config.batch_size} is split over {distributed.size()} processes, fewer "
                            f"rows than processes; pass --batch-size {distributed.size()} or more")
    torch.manual_seed(config.seed)
    model = run.build_model(device, copies=4).to(device)
    seq_len, limit = run.data_config.seq_len, getattr(model, "max_input", None)
    if corpus.kind == "stream" and limit is not None and seq_len > limit:  # make_batches cuts the sequences
        log(f"data: sequences of {limit} characters, all that --block-size {limit} reads "
            f"(pass --block-size {seq_len} to train on --seq-len {seq_len})")
    batches = make_batches(corpus, run.tokenizer, device, seq_len, getattr(model, "context_size", None), limit,
                           reverse=run.data_config.reverse, max_item_len=run.data_config.max_item_len)
    cut = getattr(batches["train"], "cut", 0)
    if cut:
        log(f"data: {cut:,} train item(s) longer than --max-item-len {run.data_config.max_item_len:,} characters are "
            "cut to their first that many to train on (val and test read them whole, in pieces); pass a larger "
            "--max-item-len to train on more of them")
    if getattr(run.model_config, "balance", None) == "sampling":
        batches["train"].balance()
    if config.carry_state and not (getattr(model, "carries_state", False) and corpus.kind == "stream"):
        raise MakemoreError(f"--carry-state needs a recurrent model (lstm, gru, rnn) on prose (a stream corpus); "
                            f"this run is {run.model_name} on {corpus.kind}: drop --carry-state")
    for name, part, source in bodies or []:
        weights, _ = source.load_model("best")
        getattr(model, part).load_state_dict(weights.state_dict())
        log(f"{name}: {source.model_name} from {source.path / 'best.pt'}")
    if run.model_name == CUSTOM:
        x, y = next(iter(batches["train"].iter_all(4)))
        check_contract(model, x, y, run.tokenizer.vocab_size)
    if bodies is not None and hasattr(model, "prepare"):
        model.prepare(batches["train"])
    check_step_memory(model, batches["train"], config, device, run.path)
    return model, batches, device


def check_step_memory(model, train, config, device, where):
    """Refuse, in one line, a step that would not fit in the memory the CPU has free, before it is allocated (a
    --batch-size or a context length too large): the model's weights, gradients and AdamW's moments, and what
    autograd keeps of one batch for the backward pass (saved_bytes). On a GPU, running out of memory is an
    error that says what to change and leaves the machine as it was; on a CPU the system may swap for minutes,
    then kill the process."""
    free = free_memory(device)
    if device.type != "cpu" or not config.max_steps or free is None:
        return
    rows = min(config.batch_size, 4)
    x, y = next(iter(train.iter_all(rows)))  # the split's first rows; drawing would use up random numbers
    try:
        per_row = saved_bytes(model, x, y) / rows
    except Exception:  # noqa: BLE001 - a model that cannot be measured so: its first step will say what is wrong
        return
    weights = 4 * 4 * sum(p.numel() for p in model.parameters())  # fp32 weights, gradients, two moments
    need = per_row * config.batch_size + weights
    if need > free:
        fits = int((free - weights) / per_row) if free > weights else 0
        smaller = (f"--batch-size {fits:,} or less" if fits >= 1 else
                   "a smaller --block-size or --seq-len (one row alone does not fit)")
        raise MakemoreError(f"one training step of {where} with --batch-size {config.batch_size:,} needs about "
                            f"{need / 2**30:,.1f} GiB, and {device} has {free / 2**30:,.1f} GiB free; pass {smaller}")


def saved_bytes(model, x, y, short=(32, 64, 128)):
    """The bytes autograd keeps for the backward pass of the model's loss on the batch (x, y), found without
    allocating them for a long one: measured on the batch cut to the `short` lengths and extrapolated by the
    parabola through them (attention grows with the square of the length, everything else in proportion)."""
    def measured(length):
        total = 0

        def count(t):
            nonlocal total
            total += t.numel() * t.element_size()
            return t

        # copies of the buffers, so that BatchNorm's running figures stay as they are; the random state too
        state = {**dict(model.named_parameters()), **{k: b.clone() for k, b in model.named_buffers()}}
        with torch.random.fork_rng(devices=[]), torch.autograd.graph.saved_tensors_hooks(count, lambda t: t):
            torch.func.functional_call(model, state, (x[:, :length], y[:, :length]))
        return total

    length = x.shape[1] if x.dim() > 1 else 1
    if length <= short[-1]:
        return measured(length)
    (a, fa), (b, fb), (c, fc) = [(n, measured(n)) for n in short]
    # Lagrange's form of the parabola through the three points, at `length`
    n = length
    return (fa * (n - b) * (n - c) / ((a - b) * (a - c)) + fb * (n - a) * (n - c) / ((b - a) * (b - c))
            + fc * (n - a) * (n - b) / ((c - a) * (c - b)))


def new_run(run_dir, model_name, model_overrides, data_config, train_overrides, log, pretrained, backward,
            module=None, leak_check="refuse"):
    """A new run of run_training, its corpus, and the bodies its model starts from: (what the log calls it,
    the model's part, the language-model run) for --from and --backward. Its options are checked
    before its data is read, which can take a while. module: a model of the user's own (model_name CUSTOM)."""
    check_new_run(Path(run_dir))  # again in run_training, under the run's lock
    if leak_check not in LEAK_CHECKS:
        raise MakemoreError(f"leak_check must be one of {', '.join(LEAK_CHECKS)}, got {leak_check!r}")
    if pretrained:  # a classifier's options other than its own would configure a body that --from replaces
        own = {f.name for f in fields(MODELS[model_name].config)} - {"encoder"}
        body = [option_name(k) for k in model_overrides or {} if k not in own]
        if body:
            raise MakemoreError(f"the body comes from --from {pretrained}, so its options are set there: drop "
                                f"{', '.join(body)}")
    custom = model_name == CUSTOM
    if not custom:
        model_config(model_name, **(model_overrides or {}))  # a typo is told at once, not after minutes of reading
    options = TrainConfig(**(train_overrides or {}))     # a large text
    check_precision(options.precision, pick_device(options.device))
    task = task_of(model_name)
    task.check_data(data_config)
    if backward and not pretrained:
        raise MakemoreError("--backward is the second body of a classifier finetuned --from a language model; pass "
                            "--from too")
    if pretrained and (model_overrides or {}).get("bidirectional") and not backward:
        raise MakemoreError("a bidirectional classifier finetuned from --from needs its backward body: pass --backward "
                            "runs/<a language model trained as --from was, with --reverse true>")
    if pretrained and data_config.min_char_count:
        raise MakemoreError("a classifier finetuned --from a language model reads with that model's tokenizer; drop "
                            "--min-char-count here, and pass it when you pretrain the language model")
    corpus = load_corpus(data_config, log, labeled=task.labeled)
    data_config = corpus.config  # its source resolved and its kind decided, so sample and eval read the run alike
    overrides, bodies = {**(model_overrides or {})}, []
    if corpus.kind == "labeled":
        overrides["labels"] = corpus.labels
    if data_config.min_char_count:
        counts = corpus.train_char_counts()
        tokenizer = CharTokenizer.from_counts(counts, data_config.min_char_count)
        if not tokenizer.chars:
            raise MakemoreError(f"--min-char-count {data_config.min_char_count} leaves no character: the commonest "
                                f"occurs {max(counts.values(), default=0):,} times in the train split; pass a smaller "
                                "one")
        rare = len(corpus.chars()) - len(tokenizer.chars)
        log(f"data: {len(tokenizer.chars)} characters seen at least {data_config.min_char_count} time(s) in the train "
            f"split; the other {rare} and any new one read as the unknown-character id")
    else:
        tokenizer = CharTokenizer(corpus.chars())
        if len(tokenizer.chars) > LARGE_VOCAB and not pretrained:
            log(large_vocab_note(corpus.train_char_counts()))
    if pretrained:
        lm = open_pretrained(pretrained, corpus, log, module=module, leak_check=leak_check)
        tokenizer, bodies = lm.tokenizer, [("body", "encoder", lm)]
        overrides.update(encoder=lm.model_name, encoder_config=asdict(lm.model_config), pretrained=str(lm.path))
    if backward:
        back = open_pretrained(backward, corpus, log, like=lm, module=module, leak_check=leak_check)
        bodies.append(("backward body", "backward", back))
        overrides.update(bidirectional=True, pretrained_backward=str(back.path))
    if custom:
        cls = type(module)
        cfg = CustomConfig(cls.__qualname__, cls.__module__, sum(p.numel() for p in module.parameters()))
        defaults = {}
    else:
        cfg = model_config(model_name, **overrides, vocab_size=tokenizer.vocab_size)
        defaults = MODELS[model_name].train_defaults(cfg)
    train_config = TrainConfig(**{**defaults, **(train_overrides or {})})
    run = Run(run_dir, model_name, cfg, data_config, train_config, tokenizer, module)
    run.data_sha256 = corpus.digest()
    return run, corpus, bodies


def write_outputs(run, best, metrics, corpus):
    """What a finished run leaves besides its checkpoints: metrics.json, the task's outputs (samples.txt
    or confusion.png), and its hyperparameters and final figures for TensorBoard."""
    # slow to import; only a finished run needs it
    from torch.utils.tensorboard import SummaryWriter

    write_json(run.path / "metrics.json", metrics)
    run.task.write_outputs(run, best, metrics, corpus)
    with SummaryWriter(run.path) as writer:
        hparams = {"model": run.model_name, **asdict(run.model_config), **asdict(run.train_config)}
        hparams = {k: v for k, v in hparams.items() if isinstance(v, (int, float, str, bool))}
        finals = {k: v for k, v in metrics.items() if k.endswith(("_loss", "_accuracy", "_macro_f1"))}
        # "summary" sorts after the loss curves in TensorBoard's list
        writer.add_hparams(hparams, {f"summary/{k}": v for k, v in finals.items()}, run_name=".")


def finished_run(run_dir, model_name, overrides, data_config, train_overrides=None, log=tqdm.write, pretrained=None,
                 backward=None, leak_check="refuse"):
    """metrics.json of run_dir, after training the run (or resuming it) if it has not finished; None
    if it was interrupted. Experiments made of many runs (compare, transfer) carry on with this."""
    made = (run_dir / "config.json").exists()
    run = check_same_run(run_dir, model_name, overrides, data_config, train_overrides) if made else None
    path = run_dir / "metrics.json"
    if path.exists():
        # its figures count only while its data reads the same
        (run or Run.open(run_dir)).load_corpus(log=lambda _: None)
        log(f"{run_dir.name}: done before, read from {path}")
        return json.loads(path.read_text())
    resume = (run_dir / "last.pt").exists()
    log(f"{run_dir.name}: {'resuming' if resume else 'training'}")
    data = None if resume else DataConfig(**asdict(data_config))  # run_training records the kind it decided
    _, metrics = run_training(run_dir, model_name, overrides, data, train_overrides, resume=resume, log=log,
                              pretrained=None if resume else pretrained, backward=None if resume else backward,
                              leak_check=leak_check)
    return metrics


NOT_COMPARED = {"device", "log_interval", "eval_batch_size"}  # options that change where and how fast, not what


def check_same_run(run_dir, model_name, overrides, data_config, train_overrides):
    """An experiment reads back (or resumes) a run only if it was made with the options asked for now:
    the run, or a one-line error that names the options that differ."""
    run = Run.open(run_dir)
    model = asdict(run.model_config)
    model = {**(model.get("encoder_config") or {}), **model}  # a classifier's body options count too
    data = {k: v for k, v in asdict(resolve(data_config)).items() if not (k == "kind" and v == "auto")}
    asked = [("model", model_name, run.model_name)]
    asked += [(k, v, model.get(k)) for k, v in (overrides or {}).items()]
    asked += [(k, v, getattr(run.data_config, k)) for k, v in data.items()]
    asked += [(k, v, getattr(run.train_config, k)) for k, v in (train_overrides or {}).items() if k not in NOT_COMPARED]
    same = lambda a, b: json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)  # tuples read back as lists
    differ = [f"{k} {had!r} (asked: {want!r})" for k, want, had in asked if not same(want, had)]
    if differ:
        raise MakemoreError(f"{run_dir} holds a run made with other options: {', '.join(differ)}; "
                            "pass another --out-dir to train anew, or the same options to read it back")
    return run


def open_pretrained(path, corpus, log, like=None, module=None, leak_check="refuse"):
    """The language-model run a classifier starts from; its tokenizer must know every character of the data,
    and its train split must hold no item of the classifier's val or test split (see check_no_leak).
    like: given for the backward body's run (--backward): the forward body's run, whose model and tokenizer
    the backward one must have; it reads right to left. module: the run's model, if it is one of the user's
    own, which must have the body(idx) and head(features) of the language-model contract."""
    reverse = like is not None
    option = "--backward" if reverse else "--from"
    lm = Run.open(path, option=option)
    lm.module = module
    lm.task.require("pretrain", lm, option=option)
    if lm.model_name == CUSTOM and not callable(getattr(module, "body", None)):
        name = type(module).__name__ if module is not None else lm.model_config.name
        raise MakemoreError(f"{option} {path} holds a model of your own ({name}); a classifier reads an item with its "
                            f"body: give finetune that model (built as it was trained), with a body(idx) -> (B, T, H) "
                            "method and a head(features) -> logits")
    if lm.data_config.reverse != reverse:
        raise MakemoreError(f"{option} {path} reads items right to left (it was trained with --reverse true): pass it "
                            "as --backward"
                            if lm.data_config.reverse else
                            f"--backward {path} reads items left to right; pass a language model trained with "
                            "--reverse true")
    if reverse:  # both bodies are built from one config and read one tokenizer
        if lm.model_name != like.model_name:
            raise MakemoreError(f"--backward {path} is a {lm.model_name} and --from {like.path} a {like.model_name}; "
                                "pretrain both with the same model")
        mine, theirs = asdict(lm.model_config), asdict(like.model_config)
        differ = [f"{option_name(k)} {mine[k]} against {theirs[k]}" for k in mine if mine[k] != theirs[k]]
        if differ:
            raise MakemoreError(f"--backward {path} differs from --from {like.path} in {', '.join(differ)}; "
                                "pretrain both with the same model options")
        if lm.tokenizer.to_json() != like.tokenizer.to_json():
            raise MakemoreError(f"--backward {path} and --from {like.path} have different tokenizers; pretrain both on "
                                "the same data")
    missing = sorted(set(corpus.chars()) - set(lm.tokenizer.chars))
    shown = ", ".join(describe_char(c) for c in missing[:5]) + (f" and {len(missing) - 5} "
                                                                "more" if len(missing) > 5 else "")
    if missing and lm.tokenizer.unk:
        log(f"data: {len(missing)} character(s) of the labeled data are unknown to the tokenizer of {option} {path} "
            f"and read as its unknown-character id: {shown}")
    elif missing:
        raise MakemoreError(f"the tokenizer of {option} {path} lacks {len(missing)} character(s) of the labeled data: "
                            f"{shown}; pretrain on text that holds them (e.g. the same data), or with "
                            "--min-char-count 1 (new characters then read as its unknown-character id), or train the "
                            "classifier from scratch")
    if not (lm.path / "best.pt").exists():
        raise MakemoreError(f"{option} {path} has no best.pt; train the language model first")
    check_no_leak(lm, corpus, log, leak_check)
    return lm


LEAK_CHECKS = ("refuse", "warn")
LEAK_MIN_CHARS = 40  # a held-out item shorter than this may occur inside other text by chance: whole lines only
LEAK_SEARCH_CHARS = 2 * 10**9  # characters searched in all for held-out items inside a pretraining text


def check_no_leak(lm, corpus, log, leak_check="refuse"):
    """A body pretrained on items of the classifier's val or test split has seen them: refuse it (or, with
    leak_check "warn", say so and go on).

    The language model's train split is read again from its data options. Items (lines, or the items of
    labeled data) are matched whole; a labeled corpus read by an LM keeps the labeled split, so the same
    data and split options never leak. Prose (a stream) is matched line by line against every held-out
    item, and searched for a sample of the held-out items of LEAK_MIN_CHARS or more inside its lines,
    as many as LEAK_SEARCH_CHARS of searching allows (at least 16)."""
    try:
        seen = lm.load_corpus(log=lambda *args: None)
    except MakemoreError as e:
        log(f"warning: cannot read the pretraining data of {lm.path} to check that it holds no val or test item: {e}")
        return
    held_out = sorted({item for item, _ in corpus.val + corpus.test})
    if seen.kind == "lines":
        leaked, inside, searched = sorted(set(held_out).intersection(seen.train)), [], 0
    else:
        leaked, inside, searched = leaks_in_text(seen.train, held_out)
    if not leaked and not inside:
        return
    found = sorted(set(leaked) | set(inside))
    shown = ", ".join(repr(item[:60]) for item in found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
    how = f"{len(leaked):,} as whole lines" + (f", {len(inside):,} of {searched:,} searched for inside its text"
                                               if searched else "")
    problem = (f"the pretraining text of {lm.path} holds items of this classifier's val and test splits ({how}; "
               f"{len(held_out):,} held-out items in all): {shown}")
    if leak_check == "warn":
        log(f"warning: {problem}; the val and test figures overstate what the classifier does on text it has not seen")
        return
    raise MakemoreError(f"{problem}; pretrain on text without them (or on the labeled data itself with the same "
                        "--split-seed, --val-frac and --test-frac: its LM split leaves them out), or pass --leak-check "
                        "warn to go on")


def leaks_in_text(text, held_out):
    """(held-out items that are whole lines of text, a sample of the longer ones found inside it, how many
    were searched for), reading the text (a makemore.text.Text) in pieces."""
    whole, targets = set(held_out), [item for item in held_out if len(item) >= LEAK_MIN_CHARS]
    n_search = min(len(targets), max(16, LEAK_SEARCH_CHARS // max(1, len(text))))
    sample = random.Random(0).sample(targets, n_search)
    longest = max(map(len, held_out), default=0) + 1  # a line's unread end, kept for the next piece, need be no longer
    lines, inside, carry = set(), set(), ""
    for at in range(0, len(text), LEAK_PIECE_CHARS):
        piece = carry + str(text[at:at + LEAK_PIECE_CHARS])
        head, _, tail = piece.rpartition("\n")  # a line cut by the piece's end is read with the next piece
        lines.update(whole.intersection(line.strip() for line in head.split("\n") if len(line) < longest + 2))
        inside.update(item for item in sample if item not in inside and item in piece)
        carry = tail[-longest:]
    lines.update(whole.intersection([carry.strip()]))
    return sorted(lines), sorted(inside), n_search


LEAK_PIECE_CHARS = 1 << 24


def open_runs(run_dirs):
    """The runs of one or more --run; several are averaged, so they must be of one kind: classifiers of
    the same labels, or language models of the same characters that read in the same direction."""
    runs = [Run.open(d) for d in run_dirs]
    if len(runs) == 1:
        return runs
    seen = set()
    for run in runs:
        if run.path.resolve() in seen:
            raise MakemoreError(f"{run.path} is passed twice; pass each run once (twice would count it double)")
        seen.add(run.path.resolve())
    first = runs[0]
    for run in runs[1:]:
        if run.task is not first.task:
            lm, clf = sorted((first, run), key=lambda r: r.task.listing_order)  # the language model first
            raise MakemoreError(f"{lm.path} is a language model ({lm.model_name}) and {clf.path} a classifier; several "
                                "--run are averaged, which needs runs of one kind: language models or classifiers")
        first.task.check_mixable(first, run)
    return runs
