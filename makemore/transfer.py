"""The transfer experiment: when does pretraining a language model help a classifier that has few
labels, and is either worth it against a character n-gram baseline?

One language model is pretrained on unlabeled text: the items of the labeled corpus's train split
(labels unused; never the val or test items), or any other text (pretrain_data: prose, lines, a
dataset), checked to hold no val or test item; for bidirectional classifiers a second one reads it
right to left. Then, for each share of the train labels and each seed, two classifiers of the same
architecture train with the same budget: one from scratch, one from the pretrained body, and the
n-gram baseline (makemore.baseline) is fitted on the same labels. The seed picks the labels
(--label-seed) and the initialisation and batches; val and test splits are the same for every run.
Every run is an ordinary run directory under the experiment's folder; a finished run is read back,
not retrained, so an interrupted experiment carries on where it stopped (the baseline, which takes
seconds, is fitted again).
"""
import statistics
from dataclasses import asdict

from makemore.baseline import describe, ngram_baseline
from makemore.config import DataConfig
from makemore.data import load_corpus, title
from makemore.files import check_outputs, make_dir, write_csv, write_text
from makemore.models import FINETUNED
from makemore.runs import finished_run

COLUMNS = ["fraction", "labels", "seed", "init", "test_accuracy", "test_macro_f1", "val_accuracy", "val_macro_f1",
           "best_step", "seconds"]
INITS = ("scratch", "pretrained")
OUTPUTS = ("transfer.csv", "transfer.md", "transfer.png")
BASELINE = "n-gram baseline"
FINETUNE_ONLY = ("freeze_steps", "unfreeze", "body_lr_mult")  # meaningless for a body that starts at random


def transfer(data_config, encoder, fractions, seeds, out_dir, body_overrides=None, classifier_overrides=None,
             train_overrides=None, pretrain_overrides=None, log=print, pretrain_data=None, leak_check="refuse"):
    """Returns (why it stopped, rows). Writes transfer.csv, transfer.md and transfer.png in out_dir.
    pretrain_data: a DataConfig of the text the language model learns from (default: the labeled items)."""
    # bad data: told now, not after "lm: training", and no folder left behind
    load_corpus(DataConfig(**{**asdict(data_config), "kind": "labeled"}), log=lambda _: None, labeled=True)
    check_outputs(out_dir, *OUTPUTS)
    make_dir(out_dir)
    body_overrides, classifier_overrides = body_overrides or {}, classifier_overrides or {}
    lm_dir = out_dir / "lm"
    backward = out_dir / "lm-backward" if classifier_overrides.get("bidirectional") else None
    for path, reverse in [(lm_dir, False)] + ([(backward, True)] if backward else []):
        if pretrain_data is None:
            lm_data = DataConfig(**{**asdict(data_config), "kind": "labeled", "label_frac": 1.0, "reverse": reverse})
        else:
            lm_data = DataConfig(**{**asdict(pretrain_data), "reverse": reverse})
        if finished_run(path, encoder, body_overrides, lm_data, pretrain_overrides, log) is None:
            return "interrupted", []
    rows = []
    for fraction in fractions:
        for seed in seeds:
            data = DataConfig(**{**asdict(data_config), "kind": "labeled", "label_frac": fraction, "label_seed": seed})
            for init in INITS:
                run_dir = out_dir / f"frac{fraction:g}-seed{seed}-{init}"
                if init == "scratch":
                    overrides = {k: v for k, v in classifier_overrides.items() if k not in FINETUNE_ONLY}
                    overrides.update(body_overrides, encoder=encoder)
                else:
                    overrides = dict(classifier_overrides)
                bodies = {"pretrained": lm_dir, "backward": backward} if init == "pretrained" else {}
                metrics = finished_run(run_dir, FINETUNED, overrides, data, {**(train_overrides or {}), "seed": seed},
                                       log, leak_check=leak_check, **bodies)
                if metrics is None:
                    return "interrupted", rows
                rows.append({"fraction": fraction, "labels": metrics["train_items"], "seed": seed, "init": init,
                             **{k: metrics[k] for k in COLUMNS[4:]}})
            rows.append(baseline_row(data, fraction, seed, log))
    support = {label: v["support"] for label, v in metrics["test_per_label"].items()}
    top = max(support, key=support.get)
    write_results(rows, out_dir, f"{encoder} classifier on {title(data_config)}: from scratch, pretrained, and the "
                                 f"{BASELINE}",
                  (top, support[top] / sum(support.values())))
    return "done", rows


def baseline_row(data, fraction, seed, log):
    """The n-gram baseline fitted on the labels of one share and seed, as a row of transfer.csv."""
    figures = ngram_baseline(load_corpus(data, log=lambda _: None, labeled=True))
    log(f"frac{fraction:g}-seed{seed}: {BASELINE} test accuracy {figures['test_accuracy']:.3f} macro-F1 "
        f"{figures['test_macro_f1']:.3f} ({figures['seconds']:.1f} s)")
    return {"fraction": fraction, "labels": figures["train_items"], "seed": seed, "init": BASELINE,
            "best_step": "", **{k: figures[k] for k in COLUMNS[4:] if k in figures}}


def summarise(rows):
    """{init: [(labels, {metric: [values over seeds]}), ...]} in order of fraction."""
    summary = {}
    for init in (*INITS, BASELINE):
        points = {}
        for r in rows:
            if r["init"] == init:
                point = points.setdefault(r["fraction"], (r["labels"], {"test_accuracy": [], "test_macro_f1": []}))
                for metric in point[1]:
                    point[1][metric].append(r[metric])
        summary[init] = [points[f] for f in sorted(points)]
    return summary


def mean_sd(values):
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def write_results(rows, out_dir, title, majority=None):
    from makemore.plots import transfer_curves

    write_csv(out_dir / "transfer.csv", COLUMNS, rows)
    summary = summarise(rows)
    columns = ["labels", "scratch accuracy", "pretrained accuracy", "gain (points)", f"{BASELINE} accuracy",
               "pretrained - baseline (points)", "scratch macro-F1", "pretrained macro-F1", f"{BASELINE} macro-F1"]
    table = ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    for (n, scratch), (_, pre), (_, base) in zip(summary["scratch"], summary["pretrained"], summary[BASELINE]):
        gain = 100 * (statistics.mean(pre["test_accuracy"]) - statistics.mean(scratch["test_accuracy"]))
        over = 100 * (statistics.mean(pre["test_accuracy"]) - statistics.mean(base["test_accuracy"]))
        table.append(f"| {n:,} | {mean_sd(scratch['test_accuracy'])} | {mean_sd(pre['test_accuracy'])} | {gain:+.1f} | "
                     f"{mean_sd(base['test_accuracy'])} | {over:+.1f} | {mean_sd(scratch['test_macro_f1'])} | "
                     f"{mean_sd(pre['test_macro_f1'])} | {mean_sd(base['test_macro_f1'])} |")
    seeds = len(summary["scratch"][0][1]["test_accuracy"]) if summary["scratch"] else 0
    note = (f"\nTest split, mean ± standard deviation over {seeds} seed(s). The {BASELINE} is a {describe()}, "
            "fitted on the same labels.")
    if majority:
        note += f" Always answering the most frequent label ({majority[0]}) scores accuracy {majority[1]:.3f}."
    note += "\n"
    write_text(out_dir / "transfer.md", "\n".join(table) + "\n" + note)
    transfer_curves(summary, out_dir / "transfer.png", title, majority)
