"""Every model, trained with its documented defaults on the same data, split and seed, in one table.

Each model is an ordinary run under the compare directory; a model whose run already finished is
read back, not retrained, so an interrupted comparison carries on where it stopped.
"""

from makemore.data import load_corpus, title
from makemore.files import check_outputs, make_dir, write_csv, write_text
from makemore.models import MODELS, model_config
from makemore.runs import finished_run

OUTPUTS = ("compare.csv", "compare.md", "compare.png")
COLUMNS = ["model", "parameters", "train_loss", "val_loss", "test_loss", "steps", "seconds", "device"]


def compare(models, out_dir, data_config, train_overrides=None, log=print):
    load_corpus(data_config, log=lambda _: None)  # bad data: told before the first model starts, and no folder left
    check_outputs(out_dir, *OUTPUTS)
    make_dir(out_dir)
    rows = []
    for name in models:
        overrides = dict(train_overrides or {})
        if MODELS[name].train_defaults(model_config(name)).get("max_steps") == 0:
            overrides.pop("max_steps", None)  # a model fitted without steps (the counted bigram) has no step budget
        metrics = finished_run(out_dir / name, name, {}, data_config, overrides, log)
        if metrics is None:
            return "interrupted", rows
        rows.append({"model": name, **{k: metrics[k] for k in COLUMNS[1:]}})
    write_csv(out_dir / "compare.csv", COLUMNS, rows)
    table = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        table.append("| " + " | ".join(f"{r[c]:.4f}" if isinstance(r[c], float) and c.endswith("loss") else
                                       f"{r[c]:,}" if isinstance(r[c], int) else str(r[c]) for c in COLUMNS) + " |")
    write_text(out_dir / "compare.md", "\n".join(table) + "\n")
    from makemore.plots import loss_bars  # matplotlib is slow to import

    steps = (train_overrides or {}).get("max_steps")
    budget = f"{steps:,} steps each" if steps is not None else "each model's default steps"
    loss_bars(rows, out_dir / "compare.png", f"makemore models on {title(data_config)}, {budget}")
    return "done", rows
