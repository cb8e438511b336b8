"""The one training loop, shared by every model: it knows the model contract and nothing of tasks.

AdamW with linear warmup and cosine decay, gradient clipping, validation every `eval_interval`
steps through a score function it is given, best and last checkpoints in the folder it is given,
optional early stopping, bf16 autocast on CUDA, TensorBoard scalars, a progress bar, and exact
resume: a checkpoint holds the model, optimizer, step and every random state, so an interrupted run
ends where an uninterrupted one would. With --ema, validation and best.pt read a moving average of
the weights.

Under torchrun the model is wrapped in DistributedDataParallel: every process draws the same global
batch, trains on its share of the rows with its loss weighted so that the all-reduced gradient is the
whole batch's, scores its share of the val split, and rank 0 alone writes (see makemore.distributed).
So a run's figures do not depend on how many processes train it, and it resumes with any number.
"""
import math
import signal
import time
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from makemore import distributed
from makemore.checkpoint import check_owner, load_checkpoint, save_checkpoint
from makemore.data import noised
from makemore.device import autocast
from makemore.errors import MakemoreError
from makemore.evaluate import val_loss
from makemore.models.base import decay_groups, map_state
from makemore.tokenizer import IGNORE


def warmup_of(cfg):
    """The steps of linear warmup: at most half the run, so a short run (a quick try, a test) still decays."""
    return min(cfg.warmup_steps, cfg.max_steps // 2)


def lr_at(step, cfg, time_spent=0.0):
    """Linear warmup to cfg.lr, then cosine decay to cfg.lr * cfg.min_lr_frac at max_steps, or by the end of
    --max-time where that comes first: time_spent is the share of the time budget used. The lower of the two
    curves: a warmup that a short time budget would not finish rises until it meets the decay, then follows it."""
    warmup = warmup_of(cfg)
    ramp = (step + 1) / warmup if step < warmup else 1.0
    progress = max((step - warmup) / max(1, cfg.max_steps - warmup), time_spent, 0.0)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return cfg.lr * min(ramp, cfg.min_lr_frac + (1 - cfg.min_lr_frac) * cosine)


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


class LossOf(nn.Module):
    """A model's training loss on a batch as one forward call, with the state it carries on under
    --carry-state: DistributedDataParallel prepares its gradient sync in forward, so it wraps this, whichever
    of the model's calls a step takes."""

    def __init__(self, model, carry):
        super().__init__()
        self.model, self.carry = model, carry

    def forward(self, x, y, state=None, fresh=None):
        if self.carry:
            _, loss, state = self.model.forward_carried(x, y, state, fresh)
            return loss, state
        return self.model(x, y)[1], None


class Silent:
    """Where a process other than rank 0 writes its TensorBoard scalars: nowhere."""

    def add_scalar(self, *args, **kwargs):
        pass

    def close(self):
        pass


class Trainer:
    """Trains model on batches["train"] and validates it with score(model) -> Validation (by default
    the loss of batches["val"]), writing last.pt, best.pt and TensorBoard events into out_dir.
    on_validate(step, criterion) hears each validation (a sweep prunes by raising from it). progress: show
    a progress bar (None: when the output is a terminal; True in a notebook, where it is a widget).
    loss_tag: the TensorBoard group of the loss curves (LOSS_TAG/train, LOSS_TAG/val); the learning rate,
    gradient norms and throughput go under "train_diagnostics", after them."""

    def __init__(self, model, batches, config, out_dir, device, score=None, log=tqdm.write, on_validate=None,
                 progress=None, loss_tag="loss", run_id=None):
        self.model, self.batches, self.config, self.device = model, batches, config, device
        self.out_dir = Path(out_dir)
        self.score = score or val_loss(batches, config)
        self.log = log
        self.on_validate = on_validate
        self.progress = progress
        self.loss_tag = loss_tag
        self.run_id = run_id  # the run's, written into its checkpoints; resume refuses another run's
        self.parameters = list(model.parameters())  # listed once: walking the modules each step costs ~3 %
        self.world, self.main = distributed.size(), distributed.is_main()
        self.loss_of = LossOf(model, config.carry_state)
        if self.world > 1 and config.max_steps and any(p.requires_grad for p in self.parameters):
            from torch.nn.parallel import DistributedDataParallel

            # a classifier freezes its body for a while: DDP must see its tensors go without gradients
            self.loss_of = DistributedDataParallel(self.loss_of, device_ids=[device.index] if device.type == "cuda"
                                                   else None, find_unused_parameters=hasattr(model, "before_step"))
            # each process its own dropout masks; the batches stay the same in all (self.generator)
            torch.manual_seed(per_process_seed(config.seed, distributed.rank(), 0))
        groups = (model.optimizer_groups(config.weight_decay) if hasattr(model, "optimizer_groups")
                  else decay_groups(model.parameters(), config.weight_decay))
        # one fused kernel updates every parameter: on a CPU, 1.3-1.6x the steps/s of a transformer with
        # torch's default (a loop over the tensors), docs/benchmarks.md
        self.fused = device.type in ("cpu", "cuda")
        self.optimizer = torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.99), fused=self.fused or None)
        self.generator = torch.Generator()  # batch indices are drawn on the CPU, so this state is portable
        self.generator.manual_seed(config.seed)
        self.step = 0
        self.best_val = math.inf  # what the best checkpoint minimises: the score's criterion
        self.best_step = 0
        self.evals_since_best = 0
        self.seconds = 0.0  # training time, summed over resumes
        self.chars = 0  # predicted characters trained on, summed over resumes
        self.evaluated_step = None  # the last step validated
        self.saved_step = None  # the step of last.pt
        self.cursors = None  # carry_state: where each batch row reads next, and the state it carries
        self.carried = None
        self.ema = None  # --ema: the average of each floating-point entry of the model's state_dict
        self.averaged = None  # --ema: (the average's tensors, the model's), as train pairs them
        self.frequencies = None  # --input-noise: each character's share of the train split, read at the first step
        self.time_spent = 0.0  # --max-time: the share of it used, as every process agrees on it (see time_used)

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
        except RuntimeError as e:  # several processes: one has died, and the collectives fail in the others
            if self.world == 1 or not (isinstance(e, torch.distributed.DistError) or "gloo" in str(e)):
                raise
            why = str(e).strip().splitlines()[0][:300]
            raise MakemoreError(f"another process of this run stopped, so this one cannot go on ({why}); last.pt in "
                                f"{self.out_dir} holds the last checkpoint: resume the run with makemore train "
                                "--resume") from None

    def _train(self):
        from torch.utils.tensorboard import SummaryWriter  # slow to import; only training needs it

        cfg = self.config
        if cfg.patience and self.evals_since_best >= cfg.patience:  # resumed after an early stop: nothing to open
            self.log(f"stopped early at step {self.step:,}: val has not improved in {self.evals_since_best} "
                     f"validations (--patience {cfg.patience}); pass a larger --patience, or 0, to train on")
            return "early_stop"
        if self.step >= cfg.max_steps and self.evaluated_step == self.step:  # resumed when done: nothing to train
            self.log(f"{self.out_dir} has trained its {cfg.max_steps:,} steps; pass a larger --max-steps to train on")
            return "max_steps"
        if cfg.max_seconds and self.seconds >= cfg.max_seconds and self.evaluated_step == self.step:
            self.log(f"{self.out_dir} has trained its --max-time {cfg.max_time} ({self.seconds:.0f} s); pass a larger "
                     "--max-time to train on")
            return "max_time"
        if cfg.max_seconds:
            self.log(f"schedule: warmup {warmup_of(cfg):,} steps (or until it meets the decay), then the learning "
                     f"rate decays over --max-time "
                     f"{cfg.max_time} of training ({cfg.max_seconds:,.0f} s, validation not counted; "
                     f"{self.seconds:,.0f} s trained) or {cfg.max_steps:,} steps, whichever runs out first")
        self.model.train()
        self.start_average()
        writer = SummaryWriter(self.out_dir, purge_step=self.step or None) if self.main else Silent()
        show = False if not self.main else None if self.progress is None else self.progress
        bar = tqdm(total=cfg.max_steps, initial=self.step, disable=None if show is None else not show, unit="step",
                   dynamic_ncols=True)
        interval = Interval(self.device)
        reason = "max_steps"
        try:  # closed however training ends, so TensorBoard has every event of a stopped or pruned run
            with StopRequest() as stop:
                while self.step < cfg.max_steps:
                    lr = lr_at(self.step, cfg, self.time_spent)
                    loss, chars, grad_norm = self.take_step(lr)
                    interval.add(loss, chars)
                    at_report = self.step % cfg.log_interval == 0
                    timed_out = self.time_used(interval, at_report)
                    at_eval = self.step % cfg.eval_interval == 0 or self.step == cfg.max_steps or timed_out
                    # several processes agree to stop at a report, which they all reach at the same step
                    signalled = stop.signal is not None and self.world == 1
                    if not (at_eval or signalled or at_report):
                        continue
                    train_loss = self.report(writer, bar, interval, lr, grad_norm)
                    if at_eval and self.validate(writer, train_loss):
                        reason = "early_stop"
                        break
                    if timed_out:
                        reason = "max_time"
                        break
                    if distributed.anyone(stop.signal is not None, self.device):
                        reason = "interrupted"
                        break
                    interval = Interval(self.device)  # after validation: it is not training time
            if reason == "max_steps" and self.evaluated_step != self.step:  # no step was taken (max_steps 0)
                self.validate(writer, None)
            self.save("last")
            return reason
        finally:
            bar.close()
            writer.close()

    def take_step(self, lr):
        """One optimizer step at learning rate lr, on the next training batch: (its loss, detached, the
        characters the batch holds, the gradient norm before clipping). The training loop and lr-find both step so."""
        cfg, model = self.config, self.model
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_mult", 1.0)  # a classifier's body may learn slower than its head
        if hasattr(model, "before_step"):  # a classifier freezes and thaws its body here
            model.before_step(self.step)
        x, y, fresh = self.next_batch()
        chars = self.batches["train"].chars_of(x, y)  # of the whole batch, which every process draws
        targets, share = y, None
        if self.world > 1:  # this process's rows, and their share of the batch's loss
            rows = distributed.rows(len(x))
            x, y, fresh = x[rows], y[rows], None if fresh is None else fresh[rows]
            share = self.weight_of(y) / self.weight_of(targets)
        with autocast(self.device, cfg.precision):
            loss, carried = self.loss_of(x, y, self.carried, fresh)
        if cfg.carry_state:
            self.carried = carried
        self.optimizer.zero_grad(set_to_none=True)
        if share is None:
            loss.backward()
        else:  # DDP averages the processes' gradients: each weighs in by its share of the targets
            loss = loss * share
            (loss * self.world).backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.parameters, cfg.grad_clip or math.inf)
        self.optimizer.step()
        self.update_average()
        self.step += 1
        return loss.detach(), chars, grad_norm

    def time_used(self, interval, at_report):
        """Under --max-time, update the share of it used (which the learning rate decays by) and say whether it
        is all used. One process reads its own clock after every step; several agree on rank 0's at each report
        (their learning rates and their last step must be the same), so they may overrun by --log-interval steps."""
        budget = self.config.max_seconds
        if not budget:
            return False
        if self.world > 1 and not at_report:
            return False
        spent = distributed.from_main(self.seconds + interval.elapsed()) if self.world > 1 else \
            self.seconds + interval.elapsed()
        self.time_spent = min(1.0, spent / budget)
        return spent >= budget

    def weight_of(self, y):
        """What the model's loss averages over in a batch with targets y: its scored targets, or their summed
        class weights for a classifier that weighs its classes."""
        weigh = getattr(self.model, "target_weight", None)
        return weigh(y) if weigh else (y != IGNORE).sum()

    # -- what a step reads ------------------------------------------------------------------------
    def next_batch(self):
        """The next training batch (x, y) and, with --carry-state, which rows start afresh; with
        --input-noise, x has some characters replaced."""
        cfg, train = self.config, self.batches["train"]
        if cfg.carry_state:
            x, y, fresh = self.next_windows(train)
        else:
            (x, y), fresh = train.sample(cfg.batch_size, self.generator), None
        if cfg.input_noise:
            if self.frequencies is None:
                self.frequencies = train.char_frequencies()
            x = noised(x, cfg.input_noise, self.frequencies)
        return x, y, fresh

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

    # -- --ema: a moving average of the weights -----------------------------------------------------
    def start_average(self):
        if self.config.ema and self.ema is None:
            self.ema = {k: v.detach().clone() for k, v in self.model.state_dict().items() if v.is_floating_point()}
        if self.ema is not None:  # views of the weights and buffers, so the average follows them in place
            live = self.model.state_dict()
            self.averaged = (list(self.ema.values()), [live[k] for k in self.ema])

    def update_average(self):
        if self.averaged is not None:
            # the decay grows as (1 + step) / (10 + step) up to --ema, so the initial weights fade fast
            decay = min(self.config.ema, (1 + self.step) / (10 + self.step))
            torch._foreach_lerp_(*self.averaged, 1 - decay)  # as torch.optim.swa_utils' EMA does

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

    # -- reports, validation and checkpoints -----------------------------------------------------------
    def diverged(self, what, loss, when):
        """The error that stops a run whose loss is not finite, raised before anything is saved."""
        saved = (f"nothing was saved after step {self.saved_step} (last.pt and best.pt hold the last good model)"
                 if self.saved_step is not None else "no checkpoint had been saved yet")
        return MakemoreError(f"the {what} loss became {loss} {when}; {saved}: lower --lr or set --grad-clip")

    def report(self, writer, bar, interval, lr, grad_norm):
        """Report the steps since the last report and return their mean loss; a non-finite loss stops
        before anything is saved."""
        train_loss, chars, elapsed = interval.mean_loss(), interval.chars(), interval.elapsed()
        self.seconds += elapsed
        self.chars += chars
        if not math.isfinite(train_loss):
            raise self.diverged("training", train_loss, f"by step {self.step}")
        speed = chars / max(elapsed, 1e-9)
        writer.add_scalar(f"{self.loss_tag}/train", train_loss, self.step)
        writer.add_scalar("train_diagnostics/lr", lr, self.step)
        writer.add_scalar("train_diagnostics/grad_norm", grad_norm.item(), self.step)
        for name, child in self.model.named_children():  # per layer group, so an exploding one shows
            grads = [p.grad for p in child.parameters() if p.grad is not None]
            if grads:
                writer.add_scalar(f"train_diagnostics/grad_norm_{name}", torch.nn.utils.get_total_norm(grads).item(),
                                  self.step)
        writer.add_scalar("train_diagnostics/chars_per_s", speed, self.step)
        bar.set_postfix(loss=f"{train_loss:.4f}", chars_s=f"{speed:,.0f}", refresh=False)
        bar.update(interval.steps)
        return train_loss

    def validate(self, writer, train_loss):
        """Score the model (its moving average, with --ema), keep the best checkpoint by the score's
        criterion; True means stop early."""
        cfg = self.config
        with self.averaged_weights():
            v = self.score(self.model)
        if not math.isfinite(v.loss):  # a model that cannot score val is no checkpoint to keep
            raise self.diverged("val", v.loss, f"at step {self.step}")
        self.evaluated_step = self.step
        for tag, value in v.scalars.items():
            writer.add_scalar(tag, value, self.step)
        writer.add_scalar(f"{self.loss_tag}/val", v.loss, self.step)
        better = v.criterion < self.best_val
        if better:
            self.best_val, self.best_step, self.evals_since_best = v.criterion, self.step, 0
            self.save("best")
        else:
            self.evals_since_best += 1
        self.save("last")
        train = "-" if train_loss is None else f"{train_loss:.4f}"
        lr = f" | lr {lr_at(self.step - 1, cfg, self.time_spent):.2e}" if self.step else ""
        self.log(f"step {self.step:>7,}/{cfg.max_steps:,} | train {train} | val {v.loss:.4f}"
                 f"{' (best)' if better else ''}{v.text}{lr}")
        if self.on_validate:
            self.on_validate(self.step, v.criterion)
        return cfg.patience > 0 and self.evals_since_best >= cfg.patience

    def state(self):
        """What a checkpoint holds. Under torchrun every process takes part (they send rank 0 their random
        states and, with --carry-state, their rows' state) and rank 0's copy is the one saved."""
        ranks = distributed.each({"torch": torch.get_rng_state(), "cuda": cuda_states(),
                                  "carried": map_state(torch.Tensor.cpu, self.carried)})
        return {
            "run_id": self.run_id,
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
            "carried": joined([r["carried"] for r in ranks]),
            "ema": self.ema,
            "rng": {
                "torch": ranks[0]["torch"],
                "batches": self.generator.get_state(),
                "cuda": ranks[0]["cuda"],
            },
            "processes": [{"torch": r["torch"], "cuda": r["cuda"]} for r in ranks],  # each one's random states
        }

    def save(self, name):
        state = self.state()
        if self.main:
            save_checkpoint(self.out_dir / f"{name}.pt", state)
        distributed.barrier()  # every process reads the checkpoint after this, if it reads it
        if name == "last":
            self.saved_step = self.step

    def resume(self):
        ckpt = load_checkpoint(self.out_dir / "last.pt")
        check_owner(ckpt, self.run_id, self.out_dir / "last.pt")
        try:
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            for group in self.optimizer.param_groups:  # the checkpoint's own setting may not suit this device
                group["fused"] = self.fused or None
        except (RuntimeError, ValueError, KeyError) as e:
            raise MakemoreError(f"last.pt in {self.out_dir} does not match the run's config ({e}); retrain the "
                                "run") from None
        self.step, self.best_val, self.best_step = ckpt["step"], ckpt["best_val"], ckpt["best_step"]
        self.saved_step = self.step
        self.evals_since_best, self.seconds, self.chars = ckpt["evals_since_best"], ckpt["seconds"], ckpt["chars"]
        if self.config.max_seconds:  # a timed run goes on down its schedule from the time it has trained
            self.time_spent = min(1.0, self.seconds / self.config.max_seconds)
        self.evaluated_step = ckpt.get("evaluated_step")  # absent from older checkpoints: validate again
        self.cursors = ckpt.get("cursors")
        # this process's rows of the state (the model moves it to its device)
        self.carried = map_state(lambda s: s[:, distributed.rows(s.shape[1])], ckpt.get("carried"))
        if self.config.ema and ckpt.get("ema") is not None:  # a run resumed with --ema 0 drops its average
            self.ema = {k: v.to(self.device) for k, v in ckpt["ema"].items()}
        self.generator.set_state(ckpt["rng"]["batches"])
        processes = ckpt.get("processes") or [ckpt["rng"]]
        if len(processes) == self.world:  # as many processes as saved it: each goes on with its own random state
            mine = processes[distributed.rank()]
            torch.set_rng_state(mine["torch"])
            if mine["cuda"] and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(mine["cuda"])
        else:  # dropout draws new masks; the batches are the same
            torch.manual_seed(per_process_seed(self.config.seed, distributed.rank(), self.step))
        best = f"best at step {self.best_step:,}" if self.best_val < float("inf") else "not validated yet"
        self.log(f"resumed {self.out_dir} at step {self.step:,} ({best})")


def per_process_seed(seed, rank, step):
    """The seed of a process's own random numbers (dropout), when several processes train."""
    return (seed + 0x9E3779B97F4A7C15 * (rank + 1) + 0xBF58476D1CE4E5B9 * step) % 2**64


def cuda_states():
    return torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []


def joined(states):
    """The processes' carried states of their rows, as the whole batch's: torch's recurrent modules keep
    the batch on dimension 1 of a state (layers, batch, hidden)."""
    if states[0] is None or len(states) == 1:
        return states[0]
    if isinstance(states[0], (tuple, list)):
        return tuple(torch.cat(parts, 1) for parts in zip(*states))
    return torch.cat(states, 1)


class Interval:
    """The steps since the last report: their summed loss and predicted characters, kept on the device
    (read once a report, not once a step), and the time they took."""

    def __init__(self, device):
        self.loss_sum = torch.zeros((), device=device)
        self.n_chars = 0
        self.steps = 0
        self.start = time.perf_counter()

    def add(self, loss, chars):
        self.loss_sum += loss
        self.n_chars += chars
        self.steps += 1

    def mean_loss(self):
        return distributed.summed(self.loss_sum).item() / self.steps  # several processes: their shares added

    def chars(self):
        return int(self.n_chars)

    def elapsed(self):
        return time.perf_counter() - self.start

