"""The learning-rate range test (Smith 2017, "Cyclical Learning Rates for Training Neural Networks",
section 3.3), as lecture 2 of nn-zero-to-hero does it by hand with rates 10 ** linspace(-3, 0, 1000).

A fresh model, built from the options `makemore train` would take (or, with a pretrained language
model, a classifier as `makemore finetune --from` builds it), trains for a few hundred steps while
the learning rate grows exponentially from `start` to `end`; the training loss at each step is the
curve. The loss stays put while the rate is too small to learn, falls, is lowest a little
below the rate where training turns unstable, and then climbs: the test stops once the mean loss of
the last WINDOW steps is DIVERGED times its lowest, or a loss is not finite. The curve is smoothed by
the mean of the WINDOW steps around each step, which does not lag behind the rate as a running
average would. Nothing is saved but the curve (a CSV and a PNG).

The suggested rate is where the smoothed curve has made FALL of its fall to its lowest point: where
more rate stops buying a lower loss. It is steadier than the lowest point itself, which wanders along
a flat valley from seed to seed, and than a fixed share of it (the README gives the measurements).
"""
import math
import os
import statistics

from tqdm.auto import tqdm

from makemore.device import described
from makemore.errors import MakemoreError
from makemore.runs import built, new_run
from makemore.trainer import StopRequest, Trainer

WINDOW = 11     # steps averaged into the smoothed curve: 0.2 of a decade at the default 50 steps per decade
DIVERGED = 4.0  # stop once the mean loss of the last WINDOW steps is this many times its lowest
FALL = 0.95     # the suggested rate: the smallest at which the smoothed loss has made this share of its fall
COLUMNS = ["step", "lr", "loss", "smoothed"]


def rates(start, end, steps):
    """steps learning rates from start to end, evenly spaced on a log scale."""
    if not 0 < start < end:
        raise MakemoreError(f"lr-find needs 0 < --start < --end, got --start {start:g} --end {end:g}; "
                            "pass e.g. --start 1e-5 --end 1")
    if steps < 10:
        raise MakemoreError(f"--steps {steps} is too few for a curve; pass at least 10 (e.g. 250, the default)")
    return [start * (end / start) ** (i / (steps - 1)) for i in range(steps)]


def lr_find(run_dir, model_name, model_overrides, data_config, train_overrides, start, end, steps, log=tqdm.write,
            pretrained=None, backward=None):
    """Run the range test; returns (why it stopped, rows of COLUMNS). run_dir names the model's run for
    the log and is never written. With pretrained (and backward), the model is a classifier that starts
    from those language models' bodies, as `makemore finetune --from` builds it."""

    lrs = rates(start, end, steps)
    taken = [p for p in (run_dir.parent / f"{run_dir.name}.csv", run_dir.parent / f"{run_dir.name}.png")
             if os.path.lexists(p)]  # a link counts, even one that leads nowhere
    if taken:  # the curve's files are written at the end, under the name given
        raise MakemoreError(f"{taken[0]} exists already; pass another --name (makemore does not write over files)")
    run, corpus, bodies = new_run(run_dir, model_name, model_overrides, data_config, train_overrides, log, pretrained,
                                  backward)
    if run.train_config.max_steps == 0:
        raise MakemoreError(f"--model {model_name} with these options trains no steps (a bigram fitted from counts), "
                            "so it has no learning rate to find; pass --fit gradient")
    model, batches, device = built(run, corpus, log, bodies)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"lr-find: {model_name}, {n_params:,} parameters, {len(lrs)} steps of {run.train_config.batch_size} "
        f"at lr {start:g} to {end:g}, device {described(device)}")
    trainer = Trainer(model, batches, run.train_config, run.path, device, log=log)  # it writes nothing
    model.train()
    losses, lowest, reason = [], math.inf, "end"
    with StopRequest() as stop, tqdm(total=len(lrs), disable=None, unit="step", dynamic_ncols=True) as bar:
        for lr in lrs:
            losses.append(trainer.take_step(lr)[0].item())
            bar.update()
            recent = statistics.fmean(losses[-WINDOW:])
            if not math.isfinite(recent) or recent > DIVERGED * lowest:
                reason = "diverged"
                break
            if len(losses) >= WINDOW:
                lowest = min(lowest, recent)
            if stop.signal:
                reason = "interrupted"
                break
    rows = [{"step": i + 1, "lr": lr, "loss": loss, "smoothed": smoothed}
            for i, (lr, loss, smoothed) in enumerate(zip(lrs, losses, centred_means(losses)))]
    return reason, rows


def centred_means(values, width=WINDOW):
    """The mean of the `width` values around each value (of fewer at the ends)."""
    half = width // 2
    return [statistics.fmean(values[max(0, i - half):i + half + 1]) for i in range(len(values))]


def suggest(rows, reason):
    """(the row where the smoothed loss is lowest, the suggested learning rate or None, why there is none)."""
    finite = [r for r in rows if math.isfinite(r["smoothed"])]
    if not finite:
        raise MakemoreError("lr-find: the loss was not finite from the first step; pass a smaller --start")
    lowest = min(finite, key=lambda r: r["smoothed"])
    if lowest["step"] <= WINDOW:
        return lowest, None, "the loss did not fall: pass a smaller --start"
    if reason == "end" and lowest["step"] > len(rows) - WINDOW:
        return lowest, None, "the loss was still falling at --end: pass a larger --end"
    target = lowest["smoothed"] + (1 - FALL) * (rows[0]["smoothed"] - lowest["smoothed"])
    return lowest, next(r["lr"] for r in finite if r["smoothed"] <= target), None
