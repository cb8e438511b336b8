"""`makemore runs`: the runs in a folder, one row each: what each one is, how far it trained and how
good its best checkpoint is.

A row reads the run's config.json and metrics.json (written when training ends) and the step of its
last.pt (memory-mapped, so a large checkpoint costs little). A run whose last.pt is further on than
its metrics.json, or that has none, is unfinished: interrupted, pruned by a sweep, or training now
(its lock is held).
"""
import csv
import json
import math
import os
import re
from pathlib import Path

from makemore.checkpoint import load_checkpoint
from makemore.config import read_small
from makemore.errors import MakemoreError
from makemore.runs import Run

COLUMNS = ("run", "model", "data", "parameters", "steps", "val", "test", "time", "state")
STATES = {"max_steps": "done", "early_stop": "stopped early"}


def is_run(path):
    return (path / "config.json").is_file() and (path / "tokenizer.json").is_file()


def find_runs(folder):
    """The runs directly in folder (or folder itself, if it is a run), and the folders in it that hold
    runs further down (a sweep's trials)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MakemoreError(f"{folder} is not a folder; pass the folder that holds your runs (train's --out-dir, runs "
                            "by default)")
    if is_run(folder):
        return [folder], []
    runs, groups = [], []
    for child in sorted((p for p in folder.iterdir() if p.is_dir()), key=natural):
        if is_run(child):
            runs.append(child)
        elif any(is_run(p.parent) for p in child.rglob("config.json")):
            groups.append(child)
    return runs, groups


def natural(path):
    """Sort key of a name with numbers in it: trial-2 before trial-10."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", path.name)]


def sweep_states(folder):
    """{trial folder name: state} from a sweep folder's results.csv (see makemore.sweep), or {}: a trial
    without metrics.json may have been pruned or have failed rather than been interrupted."""
    if not (Path(folder) / "sweep.json").exists() or not (Path(folder) / "results.csv").exists():
        return {}
    with open(Path(folder) / "results.csv", newline="", encoding="utf-8") as f:
        return {Path(r["run_dir"]).name: r["state"] for r in csv.DictReader(f) if r.get("run_dir") and r.get("state")}


def describe(run):
    """The model and data cells of a run's row."""
    dc = run.data_config
    model, data = run.task.describe(run), dc.data
    if dc.reverse:
        data += ", reversed"
    if dc.kind == "labeled" and dc.label_frac < 1:
        data += f", {dc.label_frac:.0%} of labels"
    return model, data


def figure(metrics, split, task):
    return task.figure(metrics, split) if f"{split}_loss" in metrics else "-"


def duration(seconds):
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def read_metrics(path):
    """metrics.json, or None where training has not ended yet."""
    if not path.exists():
        return None
    try:
        metrics = json.loads(read_small(path, "metrics file"))
    except (json.JSONDecodeError, MakemoreError):
        metrics = None
    numbers = {"parameters": int, "steps": int, "seconds": (int, float)}
    if (not isinstance(metrics, dict) or not {"parameters", "steps", "seconds", "stopped", "val_loss"} <= metrics.keys()
            or not all(isinstance(metrics[k], kind) for k, kind in numbers.items())
            or not isinstance(metrics["val_loss"], (int, float, type(None)))):
        raise MakemoreError(f"{path} is not a makemore metrics file; the run directory is damaged")
    return metrics


def run_row(path, root, sweep_state=None):
    """A run's row (a dict of COLUMNS) and its sort key for --sort val; sweep_state: what the run's sweep
    says of it, if it is a sweep's trial. The key: language models first, then
    classifiers; within them, by data, then best first (val loss, or val accuracy); runs without a val
    figure last."""
    row = dict.fromkeys(COLUMNS, "")
    row["run"] = str(path.relative_to(root))
    try:
        run = Run.open(path)
        last = load_checkpoint(path / "last.pt", mmap=True) if (path / "last.pt").exists() else None
        metrics = read_metrics(path / "metrics.json")
    except MakemoreError as e:
        reason = e.problem.replace(f"{path}{os.sep}", "")  # the file, named within the run
        return row | {"state": f"unreadable ({reason})"}, (2, "", 0)
    task = run.task
    row["model"], row["data"] = describe(run)
    if run.locked():  # resumed, perhaps with metrics.json of its earlier end
        row["state"] = "training"
    if metrics is not None and (last is None or last["step"] <= metrics["steps"]):
        row |= {"parameters": f"{metrics['parameters']:,}", "steps": f"{metrics['steps']:,}",
                "val": figure(metrics, "val", task), "test": figure(metrics, "test", task),
                "time": duration(metrics["seconds"]),
                "state": row["state"] or STATES.get(metrics["stopped"], metrics["stopped"])}
        val = task.rank(metrics)
    elif last is None:
        return row | {"state": row["state"] or "not trained"}, (2, "", 0)
    else:  # the best checkpoint's criterion so far: a language model's val loss, a classifier's val error rate
        best = last["best_val"]
        row |= {"parameters": f"{sum(math.prod(dims) for dims in run.shape().values()):,}",
                "steps": f"{last['step']:,} of {run.train_config.max_steps:,}", "time": duration(last["seconds"]),
                "state": row["state"] or {"pruned": "pruned", "fail": "failed"}.get(sweep_state, "unfinished")}
        if best == float("inf"):  # not validated yet
            return row, (task.listing_order, row["data"], float("inf"))
        row["val"], val = task.best_so_far(best)
    return row, (task.listing_order, row["data"], val)


def table(rows):
    """Rows as aligned text columns, numbers to the right."""
    numbers = {"parameters", "steps", "val", "test", "time"}
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in COLUMNS}
    lines = []
    for r in [dict(zip(COLUMNS, COLUMNS)), *rows]:
        cells = [r[c].rjust(widths[c]) if c in numbers else r[c].ljust(widths[c]) for c in COLUMNS]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
