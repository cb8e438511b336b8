"""The two things a model can do, and everything that differs between them.

A language model predicts each next character: its loss is in nats per character, its best
checkpoint has the lowest val loss, a finished run writes samples, and a sweep minimises its val
loss. A classifier gives each item a label: its loss is in nats per item, its best checkpoint has
the lowest val error rate (1 - accuracy, the loss breaking ties, since a classifier's loss keeps
rising with its confidence while its accuracy still improves), it is scored by accuracy, macro-F1
and a confusion matrix, and a sweep minimises its error rate.

Code outside this module asks a run's task (task_of) to do these things; it never asks which task
it is.
"""
import math

import torch

from makemore.errors import MakemoreError
from makemore.evaluate import (
    Validation,
    any_label_accuracy,
    evaluate,
    log_probs,
    scores_of,
    split_scores,
    target_log_probs,
    val_loss,
)
from makemore.files import write_text
from makemore.models import MODELS
from makemore.models.classifier import thawed_by
from makemore.sampling import generate

TRAIN_SAMPLE = 2000  # a classifier's validations score this many train items, drawn once


def nats(scored, loss):
    return f"{scored} loss {loss:.4f} nats/char ({loss / math.log(2):.4f} bits/char)"


class Task:
    """What both tasks share: refusing what a task cannot do, with the message that says so."""

    refusals = {}  # noqa: RUF012 - read only; action -> the message, formatted with the run's path and model

    def require(self, action, run, **fields):
        """Raise the one-line error that says run cannot do action (e.g. "sample"), if it cannot."""
        if action in self.refusals:
            raise MakemoreError(self.refusals[action].format(path=run.path, model=run.model_name, **fields))

    def check_data(self, data_config):
        """Refuse data options that do not apply to this task."""

    def summary(self, metrics, splits):
        """Lines the end of training adds to its figures."""
        return []

    def settled_at(self, run):
        """The step from which the model's val figures speak for its settings (past warmup, see sweep)."""
        return 0


class LanguageModelTask(Task):
    labeled = False  # reads labeled data as (item, label) pairs
    loss_unit = "nats/char"
    objective = ("val_loss", "val loss (nats/char)")  # what a sweep minimises: a column of results.csv, an axis label
    score_columns = ()  # results.csv's columns of the best checkpoint's scores, besides the objective
    loss_tag = "loss"  # TensorBoard's group of the loss curves: nats per character
    streams_loss = True  # eval of one run sums its loss as it reads, holding no per-target figures
    listing_order = 0  # makemore runs --sort val lists language models first
    refusals = {  # noqa: RUF012 - read only
        "classify": "{path} is a language model ({model}); classify needs a classifier run "
                    "(makemore finetune, or makemore train --model classifier)",
    }

    # -- training ---------------------------------------------------------------------------------
    def validation(self, batches, cfg):
        """The trainer's score: the val loss, which the best checkpoint minimises."""
        return val_loss(batches, cfg)

    def metrics(self, model, batches, cfg, corpus):
        """Every split's loss of the best model (and bits per character for prose)."""
        metrics = {"unit": self.loss_unit}
        for name, split in batches.items():
            if name == "train" and corpus.kind == "stream":  # the train figure of a long text is an estimate
                split = split.spread()
            loss = evaluate(model, split, cfg.eval_batch_size, cfg.precision, progress=f"{name} figure")
            metrics[f"{name}_loss"] = round(loss, 6)
            if corpus.kind == "stream":
                metrics[f"{name}_bpc"] = round(loss / math.log(2), 6)
        return metrics

    def write_outputs(self, run, model, metrics, corpus):
        """samples.txt: 20 samples of the best model."""
        samples = generate(model, run.tokenizer, 20, corpus.kind, seed=run.train_config.seed,
                           reverse=run.data_config.reverse)
        write_text(run.path / "samples.txt", "\n".join(samples) + "\n")

    # -- reading runs: makemore runs, sweeps ----------------------------------------------------------
    def describe(self, run):
        """The model cell of the runs table."""
        return run.model_name

    def figure(self, metrics, split):
        """A split's cell of the runs table."""
        return f"{metrics[f'{split}_loss']:.4f}"

    def rank(self, metrics):
        """Sort key of a finished run for --sort val: lower is better."""
        return metrics["val_loss"]

    def best_so_far(self, criterion):
        """(val cell, sort key) of an unfinished run from its best checkpoint's criterion."""
        return f"{criterion:.4f}", criterion

    # -- scoring saved runs: makemore eval -------------------------------------------------------------
    def log_probs(self, model, batches, cfg, progress=None):
        """Each target character's log-probability of a split, and the targets."""
        return target_log_probs(model, batches, cfg.eval_batch_size, cfg.precision, progress)

    def same_targets(self, mine, theirs, my_items, their_items):
        return torch.equal(mine, theirs)

    def events(self, logp, targets):
        """Each model's log-probability of each true event, for mixture weights."""
        return logp

    def figures(self, logp, targets, scored):
        return nats(scored, -logp.double().mean().item())

    def figures_of_loss(self, scored, loss):
        return nats(scored, loss)

    def scored_loss(self, loss, n):
        """eval's figures as a dict: the loss in nats and bits per character, and how many characters."""
        return {"loss": loss, "bpc": loss / math.log(2), "characters": n}

    def scored(self, logp, targets):
        return self.scored_loss(-logp.double().mean().item(), len(targets))

    def eval_lines(self, logp, targets, items, labels, scored, where):
        """What eval prints of several runs' (or one run's) averaged log-probabilities."""
        return [f"{nats(scored, -logp.mean().item())}, {len(targets):,} characters, {where}"]

    def item_rows(self, logp, items, labels):
        """eval --items: an item predicts its characters and its end."""
        per_item = torch.split(logp, [len(item) + 1 for item in items])
        return (("item", "characters", "nats", "nats_per_char"),
                [(item, len(lp), f"{-lp.sum():.4f}", f"{-lp.mean():.4f}") for item, lp in zip(items, per_item)])

    def check_mixable(self, first, run):
        """Refuse to average run with first: language models of other characters, or that read otherwise."""
        if text_kind(run) != text_kind(first):
            raise MakemoreError(f"{first.path} reads {text_kind(first)} and {run.path} {text_kind(run)}; average "
                                "language models trained on the same data, read the same way (--kind)")
        if run.tokenizer.to_json() != first.tokenizer.to_json():
            raise MakemoreError(f"{first.path} and {run.path} know other characters; average language models "
                                "trained on the same data")
        if run.data_config.reverse != first.data_config.reverse:
            back, fore = (run, first) if run.data_config.reverse else (first, run)
            raise MakemoreError(f"{back.path} reads right to left (--reverse true) and {fore.path} left to right; "
                                "average language models that read the same way")


def text_kind(run):
    """What a language model's run reads, in words: lines (items, labeled or not) or prose."""
    return "prose" if run.data_config.kind == "stream" else "lines"


class ClassifierTask(Task):
    labeled = True
    loss_unit = "nats/item"
    objective = ("val_error", "val error rate (1 - accuracy)")
    score_columns = ("val_loss", "val_accuracy", "val_macro_f1")
    loss_tag = "loss_per_item"  # apart from the language models' nats per character
    streams_loss = False
    listing_order = 1
    refusals = {  # noqa: RUF012 - read only
        "sample": "{path} is a classifier; it labels items rather than making them: "
                  "use `makemore classify --run {path} ITEM...`",
        "pretrain": "{option} {path} is a {model} run, not a language model; pass a run of "
                    "`makemore train --model lstm` (or another language model)",
    }

    def check_data(self, data_config):
        if data_config.reverse:
            raise MakemoreError("--reverse is for language models: a classifier reads both ways with --bidirectional "
                                "true (finetune: --backward runs/<a language model trained with --reverse true>); "
                                "drop --reverse")

    def validation(self, batches, cfg):
        """Train and val scores; the best checkpoint has the lowest val error rate, the loss breaking ties.
        The train figures are of a fixed sample of TRAIN_SAMPLE items (the whole split is scored once, at
        the end), so that a validation costs the same however many items the classifier trains on."""
        splits = {"train": batches["train"].sampled(TRAIN_SAMPLE), "val": batches["val"]}

        def score(model):
            scalars = {}
            for name, split in splits.items():  # the val pass also gives the val loss
                s = split_scores(model, split, cfg.eval_batch_size, cfg.precision)
                scalars[f"accuracy/{name}"], scalars[f"macro_f1/{name}"] = s["accuracy"], s["macro_f1"]
            criterion = round(1 - s["accuracy"], 9) + 1e-6 * min(s["loss"], 100)  # error rate first, loss on a tie
            return Validation(s["loss"], criterion, scalars,
                              f" | val accuracy {s['accuracy']:.3f} macro-F1 {s['macro_f1']:.3f}")
        return score

    def metrics(self, model, batches, cfg, corpus):
        """Every split's loss (nats per item), accuracy and macro-F1 (and, in a split whose items carry
        several labels, the accuracy that counts an item right when it gets any of them), and per-label
        figures and the confusion matrix of the test split."""
        metrics, test = {"unit": self.loss_unit}, None
        for name, split in batches.items():
            logp, true = log_probs(model, split, cfg.eval_batch_size, cfg.precision)
            s = scores_of(logp, true)
            metrics[f"{name}_loss"] = round(s["loss"], 6)
            metrics[f"{name}_items"] = len(split)
            metrics[f"{name}_accuracy"] = round(s["accuracy"], 6)
            metrics[f"{name}_macro_f1"] = round(s["macro_f1"], 6)
            right, several, _ = any_label_accuracy(corpus.splits()[name], logp.argmax(-1))
            if several:  # as eval reports it: an item is right when it gets any of its labels
                metrics[f"{name}_any_label_accuracy"] = round(right, 6)
            test = s if name == "test" else None
        if test:
            metrics["labels"] = corpus.labels
            figures = ("precision", "recall", "f1")
            metrics["test_per_label"] = {
                label: {k: round(test[k][i], 4) for k in figures} | {"support": test["support"][i]}
                for i, label in enumerate(corpus.labels)
            }
            metrics["test_confusion"] = test["confusion"]
        return metrics

    def write_outputs(self, run, model, metrics, corpus):
        """confusion.png: the test split's confusion matrix."""
        from makemore.plots import confusion_matrix  # matplotlib is slow to import

        if "test_confusion" in metrics:
            confusion_matrix(metrics["test_confusion"], corpus.labels, run.path / "confusion.png",
                             f"{run.path.name}: test accuracy {metrics['test_accuracy']:.3f}, "
                             f"macro-F1 {metrics['test_macro_f1']:.3f}")

    def summary(self, metrics, splits):
        return [" "
                "| ".join(f"{name} accuracy {metrics[f'{name}_accuracy']:.4f} macro-F1 "
                          f"{metrics[f'{name}_macro_f1']:.4f}"
                           for name in splits)]

    def describe(self, run):
        mc = run.model_config
        return f"classifier ({mc.encoder}{' x2' if mc.bidirectional else ''}{', pretrained' if mc.pretrained else ''})"

    def figure(self, metrics, split):
        return f"{metrics[f'{split}_accuracy']:.3f} / {metrics[f'{split}_macro_f1']:.3f}"

    def rank(self, metrics):
        return -metrics["val_accuracy"]

    def best_so_far(self, criterion):
        return f"{1 - criterion:.3f} / -", criterion - 1  # minus the accuracy, as rank

    def settled_at(self, run):
        return thawed_by(run.model_config)  # a classifier finetuned with --freeze-steps: once its body has thawed

    def log_probs(self, model, batches, cfg, progress=None):
        """Each item's log-probabilities of every label, and the items' labels."""
        return log_probs(model, batches, cfg.eval_batch_size, cfg.precision, progress)

    def same_targets(self, mine, theirs, my_items, their_items):
        return my_items == their_items

    def events(self, logp, targets):
        return logp.gather(1, targets[:, None])[:, 0]

    def figures(self, logp, targets, scored):
        s = scores_of(logp, targets)
        return f"{scored} accuracy {s['accuracy']:.4f}, macro-F1 {s['macro_f1']:.4f}, loss {s['loss']:.4f} nats/item"

    def scored(self, logp, targets):
        """eval's figures as a dict: loss (nats per item), accuracy, macro-F1, per-label figures (lists in
        the order of the labels), the confusion matrix, and how many items."""
        return {**scores_of(logp, targets), "items": len(targets)}

    def eval_lines(self, logp, targets, items, labels, scored, where):
        s = scores_of(logp, targets)
        lines = [f"{self.figures(logp, targets, scored)}, {len(targets):,} items, {where}"]
        right, several, distinct = any_label_accuracy(items, logp.argmax(-1))
        if several:
            lines.append(f"items: {distinct:,} distinct, {several:,} with several labels; accuracy counting an item "
                         f"right when it gets any of its labels: {right:.4f}")
        width = max(len("label"), *map(len, labels))
        lines.append(f"{'label':<{width}}  precision  recall     F1  items")
        predicted = [sum(column) for column in zip(*s["confusion"])]
        for i, label in enumerate(labels):
            if s["support"][i] or predicted[i]:  # a label that is neither in the data nor predicted has no figures
                lines.append(f"{label:<{width}}  {s['precision'][i]:9.3f}  {s['recall'][i]:6.3f}  {s['f1'][i]:5.3f}  "
                             f"{s['support'][i]:5,}")
        return lines

    def item_rows(self, logp, items, labels):
        p = logp.exp()
        return (("item", "label", "predicted", "p_predicted", "p_label"),
                [(item, labels[label], labels[k], f"{p[i, k]:.4f}", f"{p[i, label]:.4f}")
                 for i, ((item, label), k) in enumerate(zip(items, p.argmax(-1).tolist()))])

    def check_mixable(self, first, run):
        """Refuse to average classifiers of other labels."""
        if run.model_config.labels != first.model_config.labels:
            mine, theirs = set(run.model_config.labels), set(first.model_config.labels)
            differ = (f"{run.path} has {', '.join(sorted(mine - theirs)) or 'none'} that {first.path} lacks, and lacks "
                      f"{', '.join(sorted(theirs - mine)) or 'none'}" if mine != theirs
                      else "their labels are in another order")
            raise MakemoreError(f"{first.path} and {run.path} have other labels ({differ}); average classifiers "
                                "trained on the same labeled data")


LANGUAGE_MODEL, CLASSIFIER = LanguageModelTask(), ClassifierTask()
TASKS = {"lm": LANGUAGE_MODEL, "classify": CLASSIFIER}


def task_of(model_name):
    """The task of a model of the registry (by its name); a model of the user's own is a language model."""
    return TASKS[MODELS[model_name].task] if model_name in MODELS else LANGUAGE_MODEL
