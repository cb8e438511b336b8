"""Every model, trained with its documented defaults on the same data, split and seed, in one table.

Each model is an ordinary run under the compare directory; a model whose run already finished is
read back, not retrained, so an interrupted comparison carries on where it stopped.
"""
import csv
import json

from makemore.data import DataConfig
from makemore.plots import loss_bars
from makemore.trainer import run_training

COLUMNS = ["model", "parameters", "train_loss", "val_loss", "test_loss", "steps", "seconds", "device"]


def compare(models, out_dir, data_config, train_overrides=None, log=print):
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in models:
        run_dir = out_dir / name
        metrics_path = run_dir / "metrics.json"
        if metrics_path.exists():
            log(f"{name}: done before, read from {metrics_path}")
            metrics = json.loads(metrics_path.read_text())
        else:
            log(f"{name}: training")
            resume = (run_dir / "last.pt").exists()
            data = None if resume else DataConfig(**vars(data_config))
            reason, metrics = run_training(run_dir, name, {}, data, train_overrides, resume=resume, log=log)
            if metrics is None:
                return reason, rows
        rows.append({"model": name, **{k: metrics[k] for k in COLUMNS[1:]}})
    with open(out_dir / "compare.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    table = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        table.append("| " + " | ".join(f"{r[c]:.4f}" if isinstance(r[c], float) and c.endswith("loss") else
                                       f"{r[c]:,}" if isinstance(r[c], int) else str(r[c]) for c in COLUMNS) + " |")
    (out_dir / "compare.md").write_text("\n".join(table) + "\n")
    loss_bars(rows, out_dir / "compare.png", f"makemore models on {data_config.data}")
    return "done", rows
