"""The one training loop, shared by every model. It knows only the language-model contract.

AdamW with linear warmup and cosine decay, gradient clipping, whole-split validation every
`eval_interval` steps, best and last checkpoints, optional early stopping, bf16 autocast on CUDA,
TensorBoard scalars, a progress bar, and exact resume: a checkpoint holds the model, optimizer,
step and every random state, so an interrupted run ends where an uninterrupted one would.
With --ema, validation, best.pt and everything that uses a run read a moving average of the weights.
"""
import json
import math
import signal
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from makemore.checkpoint import load_checkpoint, make_dir, save_checkpoint, write_json
from makemore.classify import any_label_accuracy, log_probs, scores_of, split_scores
from makemore.config import (
    check_choice,
    check_fraction,
    check_non_negative,
    check_positive,
    option_name,
)
from makemore.data import IGNORE, DataConfig, noised
from makemore.device import autocast
from makemore.errors import MakemoreError


@dataclass
class TrainConfig:
    max_steps: int = field(default=30000, metadata={"help": "optimizer steps in all (0: only what the model fits before training, e.g. bigram counts)"})
    batch_size: int = field(default=64, metadata={"help": "items (lines) or sequences (stream) per step"})
    lr: float = field(default=1e-2, metadata={"help": "peak learning rate of AdamW"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay of weight matrices and embeddings"})
    warmup_steps: int = field(default=300, metadata={"help": "steps of linear learning-rate warmup (at most half of --max-steps)"})
    min_lr_frac: float = field(default=0.02, metadata={"help": "the cosine decay ends at this share of --lr"})
    grad_clip: float = field(default=1.0, metadata={"help": "clip the gradient norm to this (0: no clipping)"})
    eval_interval: int = field(default=2000, metadata={"help": "steps between validations on the whole val split"})
    eval_batch_size: int = field(default=1024, metadata={"help": "items or sequences per batch when evaluating"})
    patience: int = field(default=0, metadata={"help": "stop after this many validations without a better loss (0: never)"})
    seed: int = field(default=1337, metadata={"help": "seed of initialisation, batches and dropout"})
    device: str = field(default="auto", metadata={"help": "auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps"})
    precision: str = field(default="auto", metadata={"help": "auto (bf16 autocast on CUDA, else fp32), fp32 or bf16", "choices": ["auto", "fp32", "bf16"]})
    log_interval: int = field(default=100, metadata={"help": "steps between progress-bar and TensorBoard updates"})
    ema: float = field(default=0.0, metadata={"help": "decay of an exponential moving average of the weights (e.g. 0.999), which is validated, kept and used in place of the weights (0: off)"})
    input_noise: float = field(default=0.0, metadata={"help": "share of input characters replaced at random while training, drawn by their frequency in the train split; the targets stay (Xie et al. 2017; 0: off)"})
    carry_state: bool = field(default=False, metadata={"help": "recurrent models on prose: each batch row reads the window after its last one and starts from its final state (truncated BPTT)"})

    def __post_init__(self):
        check_positive(self, "batch_size", "lr", "eval_interval", "eval_batch_size", "log_interval")
        check_non_negative(self, "max_steps", "weight_decay", "warmup_steps", "min_lr_frac", "grad_clip", "patience")
        check_choice(self, "precision")
        check_fraction(self, "ema", "input_noise")
        if not self.min_lr_frac <= 1:
            raise MakemoreError(f"--min-lr-frac must be at most 1 (the rate ends at that share of --lr), got {self.min_lr_frac}")


def warmup_of(cfg):
    """The steps of linear warmup: at most half the run, so a short run (a quick try, a test) still decays."""
    return min(cfg.warmup_steps, cfg.max_steps // 2)


def lr_at(step, cfg):
    """Linear warmup to cfg.lr, then cosine decay to cfg.lr * cfg.min_lr_frac at max_steps."""
    warmup = warmup_of(cfg)
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, cfg.max_steps - warmup)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return cfg.lr * (cfg.min_lr_frac + (1 - cfg.min_lr_frac) * cosine)


def outputs(model, batches, batch_size, precision="auto", progress=None):
    """(logits, targets) of every batch of a whole split, in eval mode and without gradients; the model
    goes back to the mode it was in once the split is read. progress: the label of a bar of the targets
    read, shown on a terminal (a long text's split can take minutes on a CPU)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    unit = "item" if model.task == "classify" else "char"
    bar = tqdm(total=batches.n_targets, desc=progress, unit=unit, unit_scale=True, leave=False,
               disable=None if progress else True, dynamic_ncols=True)
    try:
        for x, y in batches.iter_all(batch_size):
            with torch.no_grad(), autocast(device, precision):
                logits, _ = model(x)
            yield logits, y
            if not bar.disable:
                bar.update(int((y != IGNORE).sum()))
    finally:
        bar.close()
        model.train(was_training)


def evaluate(model, batches, batch_size, precision="auto", progress=None):
    """Mean negative log-likelihood per predicted character (nats) over a whole split; per item for a
    classifier. progress: as outputs takes it."""
    total = 0.0
    for logits, y in outputs(model, batches, batch_size, precision, progress):
        # language models: (B, T, V) logits, (B, T) targets; classifiers: (B, C) logits, (B,) labels
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1), ignore_index=IGNORE,
                                 reduction="sum").double()
    return float(total) / batches.n_targets


def target_log_probs(model, batches, batch_size, precision="auto", progress=None):
    """A language model's log-probability of each target character of a split, in the split's order
    (float32 on the CPU), and the targets: what `eval` averages over several language models.
    progress: as outputs takes it."""
    logps, targets = [], []
    for logits, y in outputs(model, batches, batch_size, precision, progress):
        keep = y != IGNORE
        y = y[keep]
        logps.append(logits[keep].float().log_softmax(-1).gather(1, y[:, None])[:, 0].cpu())
        targets.append(y.cpu())
    return torch.cat(logps), torch.cat(targets)


class StopRequest:
    """Turns SIGINT / SIGTERM into a flag the loop checks after each step; a second signal stops at once.
    A signal the process was started ignoring stays ignored: a script's background job (`cmd &`)
    ignores Ctrl-C, and so do the sweep that starts it and the sweep's workers."""

    def __init__(self):
        self.signal = None

    def __enter__(self):
        self.previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)
                         if signal.getsignal(s) is not signal.SIG_IGN}
        return self

    def _handle(self, signum, frame):
        if self.signal is not None:
            raise KeyboardInterrupt
        self.signal = signum

    def __exit__(self, *exc):
        for s, handler in self.previous.items():
            signal.signal(s, handler)


class Trainer:
    def __init__(self, model, batches, config, run, device, log=tqdm.write, on_validate=None):
        self.model, self.batches, self.config, self.run, self.device = model, batches, config, run, device
        self.log = log
        self.on_validate = on_validate  # on_validate(step, criterion) after each validation (see validate); may raise
        self.optimizer = torch.optim.AdamW(
            model.optimizer_groups(config.weight_decay), lr=config.lr, betas=(0.9, 0.99)
        )
        self.generator = torch.Generator()  # batch indices are drawn on the CPU, so this state is portable
        self.generator.manual_seed(config.seed)
        self.step = 0
        self.best_val = math.inf  # what the best checkpoint minimises: val loss (a classifier's: see validate)
        self.best_step = 0
        self.evals_since_best = 0
        self.seconds = 0.0  # training time, summed over resumes
        self.chars = 0  # predicted characters trained on, summed over resumes
        self.evaluated_step = None  # the last step validated
        self.saved_step = None  # the step of last.pt
        self.cursors = None  # carry_state: where each batch row reads next, and the state it carries
        self.carried = None
        self.ema = None  # --ema: the average of each floating-point entry of the model's state_dict
        self.averaged = None  # --ema: (the average's tensors, the model's), as _train pairs them
        self.frequencies = None  # --input-noise: each character's share of the train split, read at the first step

    # -- checkpoints ----------------------------------------------------------------------------
    def state(self):
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "best_val": self.best_val,
            "best_step": self.best_step,
            "evals_since_best": self.evals_since_best,
            "evaluated_step": self.evaluated_step,
            "seconds": self.seconds,
            "chars": self.chars,
            "cursors": self.cursors,
            "carried": self.carried,
            "ema": self.ema,
            "rng": {
                "torch": torch.get_rng_state(),
                "batches": self.generator.get_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            },
        }

    def save(self, name):
        save_checkpoint(self.run.path / f"{name}.pt", self.state())
        if name == "last":
            self.saved_step = self.step

    def resume(self):
        ckpt = load_checkpoint(self.run.path / "last.pt")
        try:
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise MakemoreError(f"last.pt in {self.run.path} does not match the run's config ({e}); retrain the run") from None
        self.step, self.best_val, self.best_step = ckpt["step"], ckpt["best_val"], ckpt["best_step"]
        self.saved_step = self.step
        self.evals_since_best, self.seconds, self.chars = ckpt["evals_since_best"], ckpt["seconds"], ckpt["chars"]
        self.evaluated_step = ckpt.get("evaluated_step")  # absent from older checkpoints: validate again
        self.cursors, self.carried = ckpt.get("cursors"), ckpt.get("carried")  # the model moves the state to its device
        if self.config.ema and ckpt.get("ema") is not None:  # a run resumed with --ema 0 drops its average
            self.ema = {k: v.to(self.device) for k, v in ckpt["ema"].items()}
        torch.set_rng_state(ckpt["rng"]["torch"])
        self.generator.set_state(ckpt["rng"]["batches"])
        if ckpt["rng"]["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])
        best = f"best at step {self.best_step:,}" if self.best_val < float("inf") else "not validated yet"
        self.log(f"resumed {self.run.path} at step {self.step:,} ({best})")

    # -- the loop -------------------------------------------------------------------------------
    def train(self):
        """Train to max_steps, early stop or a signal. Returns why it stopped."""
        try:
            return self._train()
        except torch.OutOfMemoryError:
            raise MakemoreError(
                f"out of memory on {self.device} at step {self.step} with --batch-size {self.config.batch_size}; "
                f"pass a smaller --batch-size (e.g. {max(1, self.config.batch_size // 2)}) or a smaller model "
                "(last.pt holds the last checkpoint)"
            ) from None

    def _train(self):
        from torch.utils.tensorboard import SummaryWriter  # slow to import; only training needs it

        cfg, model = self.config, self.model
        if cfg.patience and self.evals_since_best >= cfg.patience:  # resumed after an early stop: nothing to open
            self.log(f"stopped early at step {self.step:,}: val has not improved in {self.evals_since_best} "
                     f"validations (--patience {cfg.patience}); pass a larger --patience, or 0, to train on")
            return "early_stop"
        if self.step >= cfg.max_steps and self.evaluated_step == self.step:  # resumed when done: nothing to train
            self.log(f"{self.run.path} has trained its {cfg.max_steps:,} steps; pass a larger --max-steps to train on")
            return "max_steps"
        model.train()
        if cfg.ema and self.ema is None:
            self.ema = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}
        if self.ema is not None:  # views of the weights and buffers, so the average follows them in place
            live = model.state_dict()
            self.averaged = (list(self.ema.values()), [live[k] for k in self.ema])
        writer = SummaryWriter(self.run.path, purge_step=self.step or None)
        bar = tqdm(total=cfg.max_steps, initial=self.step, disable=None, unit="step", dynamic_ncols=True)
        loss_sum = torch.zeros((), device=self.device)
        chars = 0
        interval_start, steps_in_interval = time.perf_counter(), 0
        try:  # closed however training ends, so TensorBoard has every event of a stopped or pruned run
            reason = "max_steps"
            with StopRequest() as stop:
                while self.step < cfg.max_steps:
                    lr = lr_at(self.step, cfg)
                    loss, y, grad_norm = self.take_step(lr)
                    steps_in_interval += 1
                    loss_sum += loss
                    chars += (y != IGNORE).sum()

                    at_eval = self.step % cfg.eval_interval == 0 or self.step == cfg.max_steps
                    if at_eval or stop.signal or self.step % cfg.log_interval == 0:
                        train_loss = loss_sum.item() / steps_in_interval
                        self.report(writer, bar, train_loss, lr, grad_norm, int(chars),
                                    time.perf_counter() - interval_start, steps_in_interval)
                        if at_eval and self.validate(writer, train_loss):
                            reason = "early_stop"
                            break
                        if stop.signal:
                            reason = "interrupted"
                            break
                        loss_sum.zero_()
                        chars, steps_in_interval = 0, 0
                        interval_start = time.perf_counter()  # after validation: it is not training time
            if reason == "max_steps" and self.evaluated_step != self.step:  # no step was taken (max_steps 0, or last.pt of an older version at max_steps)
                self.validate(writer, None)
            self.save("last")
            return reason
        finally:
            bar.close()
            writer.close()

    def take_step(self, lr):
        """One optimizer step at learning rate lr, on the next training batch: (its loss, detached, the
        batch's targets, the gradient norm before clipping). The training loop and lr-find both step so."""
        cfg, model, train = self.config, self.model, self.batches["train"]
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_mult", 1.0)
        model.before_step(self.step)
        if cfg.carry_state:
            x, y, fresh = self.next_windows(train)
        else:
            x, y = train.sample(cfg.batch_size, self.generator)
        if cfg.input_noise:
            if self.frequencies is None:
                self.frequencies = train.char_frequencies()
            x = noised(x, cfg.input_noise, self.frequencies)
        with autocast(self.device, cfg.precision):
            if cfg.carry_state:
                _, loss, self.carried = model.forward_carried(x, y, self.carried, fresh)
            else:
                _, loss = model(x, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip or math.inf)
        self.optimizer.step()
        if self.averaged is not None:
            # the decay grows as (1 + step) / (10 + step) up to --ema, so the initial weights fade fast
            decay = min(cfg.ema, (1 + self.step) / (10 + self.step))
            torch._foreach_lerp_(*self.averaged, 1 - decay)  # as torch.optim.swa_utils' EMA does
        self.step += 1
        return loss.detach(), y, grad_norm

    def next_windows(self, train):
        """Truncated BPTT: each row reads the window after its last one; a row that reaches the end
        of the text starts again at a random place, from a fresh state."""
        high = max(1, train.n - train.seq_len)
        if self.cursors is None or len(self.cursors) != self.config.batch_size:
            self.cursors = torch.randint(high, (self.config.batch_size,), generator=self.generator)
            fresh = torch.ones(self.config.batch_size, dtype=torch.bool)
        else:
            self.cursors = self.cursors + train.seq_len
            fresh = self.cursors >= high
            self.cursors[fresh] = torch.randint(high, (int(fresh.sum()),), generator=self.generator)
        x, y = train.windows(self.cursors)
        return x, y, fresh

    def diverged(self, what, loss, when):
        """The error that stops a run whose loss is not finite, raised before anything is saved."""
        saved = (f"nothing was saved after step {self.saved_step} (last.pt and best.pt hold the last good model)"
                 if self.saved_step is not None else "no checkpoint had been saved yet")
        return MakemoreError(f"the {what} loss became {loss} {when}; {saved}: lower --lr or set --grad-clip")

    def report(self, writer, bar, train_loss, lr, grad_norm, chars, elapsed, steps):
        """Report the steps since the last report; a non-finite loss stops before anything is saved."""
        self.seconds += elapsed
        self.chars += chars
        if not math.isfinite(train_loss):
            raise self.diverged("training", train_loss, f"by step {self.step}")
        speed = chars / max(elapsed, 1e-9)
        writer.add_scalar("loss/train", train_loss, self.step)
        writer.add_scalar("lr", lr, self.step)
        writer.add_scalar("grad_norm", grad_norm.item(), self.step)
        for name, child in self.model.named_children():  # per layer group, so an exploding one shows
            grads = [p.grad for p in child.parameters() if p.grad is not None]
            if grads:
                writer.add_scalar(f"grad_norm/{name}", torch.nn.utils.get_total_norm(grads).item(), self.step)
        writer.add_scalar("throughput/chars_per_s", speed, self.step)
        bar.set_postfix(loss=f"{train_loss:.4f}", chars_s=f"{speed:,.0f}", refresh=False)
        bar.update(steps)

    @contextmanager
    def averaged_weights(self):
        """With --ema, the model holds the moving average inside the block, its trained weights after it."""
        if self.ema is None:
            yield
            return
        trained = {k: v.clone() for k, v in self.model.state_dict().items()}
        self.model.load_state_dict(self.ema, strict=False)  # the average has the floating-point entries only
        try:
            yield
        finally:
            self.model.load_state_dict(trained)

    def validate(self, writer, train_loss):
        """Evaluate on the whole val split, keep the best checkpoint; True means stop early.

        The best checkpoint has the lowest val loss; a classifier's, the lowest val error rate
        (1 - accuracy, the loss breaking ties), since a classifier's loss keeps rising with its
        confidence while its accuracy still improves.
        """
        cfg = self.config
        scored = ""
        with self.averaged_weights():
            if self.model.task == "classify":
                for name in ("train", "val"):  # the val pass also gives the val loss
                    s = split_scores(self.model, self.batches[name], cfg.eval_batch_size, cfg.precision)
                    writer.add_scalar(f"accuracy/{name}", s["accuracy"], self.step)
                    writer.add_scalar(f"macro_f1/{name}", s["macro_f1"], self.step)
                val = s["loss"]
                scored = f" | val accuracy {s['accuracy']:.3f} macro-F1 {s['macro_f1']:.3f}"
                criterion = round(1 - s["accuracy"], 9) + 1e-6 * min(val, 100)  # error rate first, loss on a tie
            else:
                val = criterion = evaluate(self.model, self.batches["val"], cfg.eval_batch_size, cfg.precision)
        if not math.isfinite(val):  # a model that cannot score val is no checkpoint to keep
            raise self.diverged("val", val, f"at step {self.step}")
        self.evaluated_step = self.step
        writer.add_scalar("loss/val", val, self.step)
        better = criterion < self.best_val
        if better:
            self.best_val, self.best_step, self.evals_since_best = criterion, self.step, 0
            self.save("best")
        else:
            self.evals_since_best += 1
        self.save("last")
        train = "-" if train_loss is None else f"{train_loss:.4f}"
        lr = f" | lr {lr_at(self.step - 1, cfg):.2e}" if self.step else ""
        self.log(f"step {self.step:>7,}/{cfg.max_steps:,} | train {train} | val {val:.4f}{' (best)' if better else ''}{scored}{lr}")
        if self.on_validate:  # hears what the best checkpoint is kept by
            self.on_validate(self.step, criterion)
        return cfg.patience > 0 and self.evals_since_best >= cfg.patience


LONG_SPLIT_CHARS = 10**7  # a split of prose this long is slow to read whole: the final train figure reads this many of its
# characters, spread over it, and train says what a val split this long costs


def final_metrics(model, batches, config, trainer, device, corpus, reason):
    """metrics.json: every split of the best model, in nats per character (and bits for prose);
    a classifier's in nats per item, with accuracy and macro-F1 (and, in a split whose items carry several
    labels, the accuracy that counts an item right when it gets any of them), and per-label figures of the test split."""
    classifier = model.task == "classify"
    metrics, test = {"unit": model.loss_unit}, None
    for name, split in batches.items():
        if classifier:
            logp, true = log_probs(model, split, config.eval_batch_size, config.precision)
            s = scores_of(logp, true)
            loss = s["loss"]
        else:
            if name == "train" and corpus.kind == "stream":  # the train figure of a long text is an estimate
                split = split.spread(LONG_SPLIT_CHARS)
            loss = evaluate(model, split, config.eval_batch_size, config.precision, progress=f"{name} figure")
        metrics[f"{name}_loss"] = round(loss, 6)
        if corpus.kind == "stream":
            metrics[f"{name}_bpc"] = round(loss / math.log(2), 6)
        if classifier:
            metrics[f"{name}_items"] = len(split)
            metrics[f"{name}_accuracy"] = round(s["accuracy"], 6)
            metrics[f"{name}_macro_f1"] = round(s["macro_f1"], 6)
            right, several, _ = any_label_accuracy(corpus.splits()[name], logp.argmax(-1))
            if several:  # as eval reports it: an item is right when it gets any of its labels
                metrics[f"{name}_any_label_accuracy"] = round(right, 6)
            test = s if name == "test" else None
    if test:
        metrics["labels"] = corpus.labels
        metrics["test_per_label"] = {
            label: {k: round(test[k][i], 4) for k in ("precision", "recall", "f1")} | {"support": test["support"][i]}
            for i, label in enumerate(corpus.labels)
        }
        metrics["test_confusion"] = test["confusion"]
    metrics.update({
        "best_step": trainer.best_step,
        "steps": trainer.step,
        "stopped": reason,
        "seconds": round(trainer.seconds, 2),
        "train_chars_per_s": round(trainer.chars / max(trainer.seconds, 1e-9)),
        "device": str(device),
        "parameters": sum(p.numel() for p in model.parameters()),
        "config": asdict(config),
    })
    return metrics


def check_new_run(path):
    if (path / "last.pt").exists() or (path / "best.pt").exists():
        raise MakemoreError(f"run {path} already exists; pass --resume to continue it, or another --name")


def run_training(run_dir, model_name=None, model_overrides=None, data_config=None, train_overrides=None,
                 resume=False, log=tqdm.write, on_validate=None, pretrained=None, backward=None):
    """Train a new run in run_dir, or resume the one there. Returns (why it stopped, metrics or None).

    A new run takes model_name, model_overrides (fields of the model's config) and data_config;
    its TrainConfig is the defaults, then the model's own (see MODELS), then train_overrides.
    pretrained: a language-model run whose body and tokenizer a new classifier starts from; backward: a
    language-model run trained with --reverse, the second body of a bidirectional classifier.
    A resumed run takes its configs from its directory; train_overrides (e.g. a larger
    max_steps) may change how it goes on. on_validate(step, criterion) hears every validation: the
    val loss, a classifier's val error rate (a sweep prunes poor trials from it by raising).
    """
    from makemore.checkpoint import Run

    if resume:
        run, bodies = Run.open(run_dir), []
        if not (run.path / "last.pt").exists():
            raise MakemoreError(f"run {run.path} has no last.pt to resume from; train it without --resume")
        run.train_config = TrainConfig(**{**asdict(run.train_config), **(train_overrides or {})})
        corpus = run.load_corpus(log)
    else:
        run, corpus, bodies = new_run(run_dir, model_name, model_overrides, data_config, train_overrides, log,
                                      pretrained, backward)

    config = run.train_config
    model, batches, device = built(run, corpus, log, None if resume else bodies)
    make_dir(run.path)
    run.lock()  # before anything is written: a second trainer of this run stops here
    if not resume:
        check_new_run(run.path)
    trainer = Trainer(model, batches, config, run, device, log, on_validate)
    if resume:
        trainer.resume()
        if trainer.step > config.max_steps:  # checked before the run's config is rewritten
            raise MakemoreError(f"run {run.path} is at step {trainer.step:,}, past --max-steps {config.max_steps:,}; "
                                f"pass a larger --max-steps to train on")
    run.save()  # a resumed run's config records the training options it goes on with
    n_params = sum(p.numel() for p in model.parameters())
    sizes = ", ".join(f"{name} {len(b):,}" for name, b in batches.items())
    unit = {"lines": "items", "stream": "sequences", "labeled": "labeled items"}[corpus.kind]
    steps = (f"{config.max_steps:,} steps of {config.batch_size} at lr {config.lr:g}" if config.max_steps
             else "no training steps")  # a bigram fitted from counts
    log(f"run {run.path}: {run.model_name}, {n_params:,} parameters, vocab {run.tokenizer.vocab_size}, "
        f"{unit}: {sizes}, device {device}, {steps}")
    if corpus.kind == "stream" and "val" in batches and batches["val"].n_targets > LONG_SPLIT_CHARS:
        log(f"data: every validation reads all {batches['val'].n_targets + 1:,} characters of the val split; "
            f"pass a smaller --val-frac (now {run.data_config.val_frac:g}) to validate faster")

    reason = trainer.train()
    if reason == "interrupted":
        log(f"interrupted at step {trainer.step}; last.pt is saved. Continue with: "
            f"makemore train --resume --name {run.path.name} --out-dir {run.path.parent}")
        return reason, None

    best, _ = run.load_model("best", device)
    metrics = final_metrics(best, batches, config, trainer, device, corpus, reason)
    write_outputs(run, best, metrics, corpus)
    figures = " | ".join(f"{k.removesuffix('_loss')} {v:.4f}" for k, v in metrics.items() if k.endswith("_loss"))
    log(f"done ({reason}) after {trainer.step:,} steps, {trainer.seconds:.0f} s: best model (step {trainer.best_step:,}) "
        f"{figures} {metrics['unit']}")
    if model.task == "classify":
        log(" | ".join(f"{name} accuracy {metrics[f'{name}_accuracy']:.4f} macro-F1 {metrics[f'{name}_macro_f1']:.4f}"
                       for name in batches))
    return reason, metrics


def built(run, corpus, log, bodies):
    """The run's model on its device, seeded, and its batches: (model, batches, device). bodies: None for a
    resumed run, whose weights come from last.pt; else the bodies of new_run, loaded before model.prepare."""
    from makemore.data import make_batches
    from makemore.device import check_precision, pick_device

    config = run.train_config
    device = pick_device(config.device)
    check_precision(config.precision, device)
    torch.manual_seed(config.seed)
    model = run.build_model().to(device)
    seq_len, limit = run.data_config.seq_len, model.max_input
    if corpus.kind == "stream" and limit is not None and seq_len > limit:  # make_batches cuts the sequences
        log(f"data: sequences of {limit} characters, all that --block-size {limit} reads "
            f"(pass --block-size {seq_len} to train on --seq-len {seq_len})")
    batches = make_batches(corpus, run.tokenizer, device, run.data_config.seq_len, model.context_size, model.max_input,
                           reverse=run.data_config.reverse)
    if getattr(run.model_config, "balance", None) == "sampling":
        batches["train"].balance()
    if config.carry_state and not (model.carries_state and corpus.kind == "stream"):
        raise MakemoreError(f"--carry-state needs a recurrent model (lstm, gru, rnn) on prose (a stream corpus); "
                            f"this run is {run.model_name} on {corpus.kind}: drop --carry-state")
    for name, part, source in bodies or []:
        weights, _ = source.load_model("best")
        getattr(model, part).load_state_dict(weights.state_dict())
        log(f"{name}: {source.model_name} from {source.path / 'best.pt'}")
    if bodies is not None:
        model.prepare(batches["train"])
    return model, batches, device


def new_run(run_dir, model_name, model_overrides, data_config, train_overrides, log, pretrained, backward):
    """A new run of run_training, its corpus, and the bodies its model starts from: (what the log calls it,
    the model's part, the language-model run) for --from and --backward. Its options are checked
    before its data is read, which can take a while."""
    from makemore.checkpoint import Run
    from makemore.data import load_corpus
    from makemore.device import check_precision, pick_device
    from makemore.models import MODELS, model_config
    from makemore.tokenizer import CharTokenizer

    check_new_run(Path(run_dir))  # again in run_training, under the run's lock
    if pretrained:  # a classifier's options other than its own would configure a body that --from replaces
        own = {f.name for f in fields(MODELS[model_name].config)} - {"encoder"}
        body = [option_name(k) for k in model_overrides or {} if k not in own]
        if body:
            raise MakemoreError(f"the body comes from --from {pretrained}, so its options are set there: drop {', '.join(body)}")
    model_config(model_name, **(model_overrides or {}))  # a typo is told at once, not after minutes of reading
    options = TrainConfig(**(train_overrides or {}))     # a large text
    check_precision(options.precision, pick_device(options.device))
    classify = MODELS[model_name].model.task == "classify"
    if data_config.reverse and classify:
        raise MakemoreError("--reverse is for language models: a classifier reads both ways with --bidirectional true "
                            "(finetune: --backward runs/<a language model trained with --reverse true>); drop --reverse")
    if backward and not pretrained:
        raise MakemoreError("--backward is the second body of a classifier finetuned --from a language model; pass --from too")
    if pretrained and (model_overrides or {}).get("bidirectional") and not backward:
        raise MakemoreError("a bidirectional classifier finetuned from --from needs its backward body: pass --backward "
                            "runs/<a language model trained as --from was, with --reverse true>")
    if pretrained and data_config.min_char_count:
        raise MakemoreError("a classifier finetuned --from a language model reads with that model's tokenizer; drop "
                            "--min-char-count here, and pass it when you pretrain the language model")
    corpus = load_corpus(data_config, log, labeled=classify)
    data_config.kind = corpus.read_as or corpus.kind  # store what auto decided, so sample and eval read the run alike
    overrides, bodies = {**(model_overrides or {})}, []
    if corpus.kind == "labeled":
        overrides["labels"] = corpus.labels
    if data_config.min_char_count:
        counts = corpus.train_char_counts()
        tokenizer = CharTokenizer.from_counts(counts, data_config.min_char_count)
        if not tokenizer.chars:
            raise MakemoreError(f"--min-char-count {data_config.min_char_count} leaves no character: the commonest "
                                f"occurs {max(counts.values(), default=0):,} times in the train split; pass a smaller one")
        rare = len(corpus.chars()) - len(tokenizer.chars)
        log(f"data: {len(tokenizer.chars)} characters seen at least {data_config.min_char_count} time(s) in the train split; "
            f"the other {rare} and any new one read as the unknown-character id")
    else:
        tokenizer = CharTokenizer(corpus.chars())
    if pretrained:
        lm = open_pretrained(pretrained, corpus, log)
        tokenizer, bodies = lm.tokenizer, [("body", "encoder", lm)]
        overrides.update(encoder=lm.model_name, encoder_config=asdict(lm.model_config), pretrained=str(lm.path))
    if backward:
        back = open_pretrained(backward, corpus, log, like=lm)
        bodies.append(("backward body", "backward", back))
        overrides.update(bidirectional=True, pretrained_backward=str(back.path))
    cfg = model_config(model_name, **overrides, vocab_size=tokenizer.vocab_size)
    train_config = TrainConfig(**{**MODELS[model_name].train_defaults(cfg), **(train_overrides or {})})
    run = Run(run_dir, model_name, cfg, data_config, train_config, tokenizer)
    run.data_sha256 = corpus.digest()
    return run, corpus, bodies


def write_outputs(run, best, metrics, corpus):
    """What a finished run leaves besides its checkpoints: metrics.json, a classifier's confusion matrix
    or a language model's samples.txt, and its hyperparameters and final figures for TensorBoard."""
    from torch.utils.tensorboard import SummaryWriter

    from makemore.sampling import generate

    config = run.train_config
    write_json(run.path / "metrics.json", metrics)
    if best.task == "classify":
        from makemore.plots import confusion_matrix

        if "test_confusion" in metrics:
            confusion_matrix(metrics["test_confusion"], corpus.labels, run.path / "confusion.png",
                             f"{run.path.name}: test accuracy {metrics['test_accuracy']:.3f}, macro-F1 {metrics['test_macro_f1']:.3f}")
    else:
        samples = generate(best, run.tokenizer, 20, corpus.kind, seed=config.seed, reverse=run.data_config.reverse)
        (run.path / "samples.txt").write_text("\n".join(samples) + "\n", encoding="utf-8")
    with SummaryWriter(run.path) as writer:
        hparams = {"model": run.model_name, **asdict(run.model_config), **asdict(config)}
        hparams = {k: v for k, v in hparams.items() if isinstance(v, (int, float, str, bool))}
        finals = {k: v for k, v in metrics.items() if k.endswith(("_loss", "_accuracy", "_macro_f1"))}
        writer.add_hparams(hparams, {f"hparam/{k}": v for k, v in finals.items()}, run_name=".")


def finished_run(run_dir, model_name, overrides, data_config, train_overrides=None, log=tqdm.write, pretrained=None,
                 backward=None):
    """metrics.json of run_dir, after training the run (or resuming it) if it has not finished; None
    if it was interrupted. Experiments made of many runs (compare, transfer) carry on with this."""
    from makemore.checkpoint import Run

    run = check_same_run(run_dir, model_name, overrides, data_config, train_overrides) if (run_dir / "config.json").exists() else None
    path = run_dir / "metrics.json"
    if path.exists():
        (run or Run.open(run_dir)).load_corpus(log=lambda _: None)  # its figures count only while its data reads the same
        log(f"{run_dir.name}: done before, read from {path}")
        return json.loads(path.read_text())
    resume = (run_dir / "last.pt").exists()
    log(f"{run_dir.name}: {'resuming' if resume else 'training'}")
    data = None if resume else DataConfig(**asdict(data_config))  # run_training records the kind it decided
    _, metrics = run_training(run_dir, model_name, overrides, data, train_overrides, resume=resume, log=log,
                              pretrained=None if resume else pretrained, backward=None if resume else backward)
    return metrics


NOT_COMPARED = {"device", "log_interval", "eval_batch_size"}  # options that change where and how fast, not what


def check_same_run(run_dir, model_name, overrides, data_config, train_overrides):
    """An experiment reads back (or resumes) a run only if it was made with the options asked for now:
    the run, or a one-line error that names the options that differ."""
    from makemore.checkpoint import Run

    run = Run.open(run_dir)
    model = asdict(run.model_config)
    model = {**(model.get("encoder_config") or {}), **model}  # a classifier's body options count too
    data = {k: v for k, v in asdict(data_config).items() if not (k == "kind" and v == "auto")}
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


def open_pretrained(path, corpus, log, like=None):
    """The language-model run a classifier starts from; its tokenizer must know every character of the data,
    and its train split must hold no item of the classifier's val or test split (see check_no_leak).
    like: given for the backward body's run (--backward): the forward body's run, whose model and tokenizer
    the backward one must have; it reads right to left."""
    from makemore.checkpoint import Run
    from makemore.models import MODELS
    from makemore.tokenizer import describe_char

    reverse = like is not None
    option = "--backward" if reverse else "--from"
    lm = Run.open(path, option=option)
    if MODELS[lm.model_name].model.task != "lm":
        raise MakemoreError(f"{option} {path} is a {lm.model_name} run, not a language model; pass a run of `makemore train --model lstm` (or another language model)")
    if lm.data_config.reverse != reverse:
        raise MakemoreError(f"{option} {path} reads items right to left (it was trained with --reverse true): pass it as --backward"
                            if lm.data_config.reverse else
                            f"--backward {path} reads items left to right; pass a language model trained with --reverse true")
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
            raise MakemoreError(f"--backward {path} and --from {like.path} have different tokenizers; pretrain both on the same data")
    missing = sorted(set(corpus.chars()) - set(lm.tokenizer.chars))
    shown = ", ".join(describe_char(c) for c in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    if missing and lm.tokenizer.unk:
        log(f"data: {len(missing)} character(s) of the labeled data are unknown to the tokenizer of {option} {path} "
            f"and read as its unknown-character id: {shown}")
    elif missing:
        raise MakemoreError(f"the tokenizer of {option} {path} lacks {len(missing)} character(s) of the labeled data: {shown}; "
                            "pretrain on text that holds them (e.g. the same data) or train the classifier from scratch")
    if not (lm.path / "best.pt").exists():
        raise MakemoreError(f"{option} {path} has no best.pt; train the language model first")
    check_no_leak(lm, corpus, log)
    return lm


def check_no_leak(lm, corpus, log):
    """A body pretrained on items of the classifier's val or test split has seen them: refuse it.

    The language model's train split is read again from its data options (a labeled corpus read by
    an LM keeps the labeled split, so the same data and split options never leak)."""
    try:
        seen = lm.load_corpus(log=lambda *args: None)
    except MakemoreError as e:
        log(f"warning: cannot read the pretraining data of {lm.path} to check that it holds no val or test item: {e}")
        return
    lines = seen.train if seen.kind == "lines" else seen.train.split("\n")
    held_out = {item for item, _ in corpus.val + corpus.test}
    leaked = sorted(held_out.intersection(line.strip() for line in lines))
    if leaked:
        shown = ", ".join(leaked[:3]) + (f" and {len(leaked) - 3} more" if len(leaked) > 3 else "")
        raise MakemoreError(
            f"{lm.path} was pretrained on {len(leaked)} item(s) of this classifier's val and test splits ({shown}); "
            f"pretrain on the labeled data itself with the same --split-seed, --val-frac and --test-frac "
            f"(its LM split leaves them out), or on text without them")
