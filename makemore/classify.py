"""Classifier scores (accuracy, macro-F1, per-class precision and recall, confusion matrix) and
top-k predictions for new items, of one classifier or of several averaged (an ensemble)."""
import math

import torch

from makemore.checkpoint import Run
from makemore.data import LabeledBatches
from makemore.errors import MakemoreError


def scores(true, pred, n_classes):
    """Accuracy, macro-F1 over the classes present in `true`, per-class precision / recall / F1 and
    the confusion matrix (rows: true label, columns: predicted label)."""
    confusion = torch.bincount(true * n_classes + pred, minlength=n_classes * n_classes).view(n_classes, n_classes)
    hits = confusion.diag().double()
    support, predicted = confusion.sum(1).double(), confusion.sum(0).double()
    precision = hits / predicted.clamp(min=1)
    recall = hits / support.clamp(min=1)
    f1 = 2 * precision * recall / (precision + recall).clamp(min=1e-12)
    present = support > 0
    return {
        "accuracy": (hits.sum() / max(1, len(true))).item(),
        "macro_f1": f1[present].mean().item() if present.any() else 0.0,
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "f1": f1.tolist(),
        "support": support.long().tolist(),
        "confusion": confusion.tolist(),
    }


def log_probs(model, batches, batch_size, precision="auto", progress=None):
    """Log-probabilities of the labels for every item of a split, (N, C) float32 on the CPU in the
    split's order, and the items' labels (N,). progress: the label of a bar of the items read."""
    from makemore.trainer import outputs  # the trainer imports this module

    out, true = [], []
    for logits, y in outputs(model, batches, batch_size, precision, progress):
        out.append(logits.float().log_softmax(-1).cpu())
        true.append(y.cpu())
    return torch.cat(out), torch.cat(true)


def average(logps, weights=None):
    """Several models' log-probabilities of the same things: the log of their mean probability, or of
    their mean weighted by weights (one per model, summing to 1)."""
    stack = torch.stack(logps)
    if weights is None:
        return torch.logsumexp(stack, 0) - math.log(len(logps))
    log_w = torch.as_tensor(weights, dtype=stack.dtype, device=stack.device).log().view(-1, *[1] * (stack.dim() - 1))
    return torch.logsumexp(stack + log_w, 0)


def mixture_weights(logps, iters=1000, tol=1e-7):
    """The weights of a mixture of models that maximise its mean log-likelihood of what happened: logps
    holds each model's log-probability of each true event (a character, an item's label). EM, as the
    interpolation weights of n-gram models are fitted on held-out text (Jelinek & Mercer 1980); the
    likelihood is concave in the weights, so it finds the best ones."""
    logps = torch.stack(logps).double()
    weights = torch.full((len(logps),), 1 / len(logps), dtype=torch.double)
    for _ in range(iters):
        joint = logps + weights.log()[:, None]
        new = (joint - torch.logsumexp(joint, 0)).exp().mean(1)  # each model's mean share of the events
        done = (new - weights).abs().max() < tol
        weights = new
        if done:
            break
    return weights.tolist()


def scores_of(logp, true):
    """scores() of the likeliest labels of log-probabilities (N, C), and their loss (nats per item)."""
    loss = -logp.gather(1, true[:, None]).double().mean().item()
    return {"loss": loss, **scores(true, logp.argmax(-1), logp.shape[1])}


def any_label_accuracy(pairs, pred):
    """Items that carry several labels are a pair each, and one prediction can be right for one pair only:
    the share of distinct items whose prediction is any of their labels, and how many items carry several."""
    labels, predicted = {}, {}
    for (item, label), p in zip(pairs, pred.tolist()):
        labels.setdefault(item, set()).add(label)
        predicted[item] = p
    right = sum(predicted[item] in mine for item, mine in labels.items())
    return right / max(1, len(labels)), sum(len(mine) > 1 for mine in labels.values()), len(labels)


def split_scores(model, batches, batch_size, precision="auto"):
    """scores() of a whole split, and its loss (nats per item), from one pass over it."""
    return scores_of(*log_probs(model, batches, batch_size, precision))


@torch.no_grad()
def item_log_probs(model, tokenizer, items):
    """Log-probabilities of the labels (N, C) of new items, on the CPU; an item the model cannot
    read (empty, too long, an unknown character) is a one-line error that names it."""
    device = next(model.parameters()).device
    for i, item in enumerate(items):
        if not item:
            raise MakemoreError(f"item {i + 1} is empty; pass non-empty items to classify")
        tokenizer.encode(item, f"the item {item!r}")  # an unknown character: say which item holds it
        if model.max_input is not None and len(item) >= model.max_input:  # the start token takes a position
            raise MakemoreError(f"item {i + 1} is {len(item)} characters long; this classifier reads at most "
                                f"{model.max_input - 1} (it was trained with --block-size {model.max_input}): shorten it")
    batches = LabeledBatches([(item, 0) for item in items], tokenizer, device, "the item", model.max_input)
    return log_probs(model, batches, 1024)[0]


def top_labels(logp, labels, k=3):
    """For each row of log-probabilities, its k likeliest labels as (label, probability) pairs."""
    p, i = logp.exp().topk(min(k, logp.shape[-1]), dim=-1)
    return [[(labels[j], q) for q, j in zip(row_p.tolist(), row_i.tolist())] for row_p, row_i in zip(p, i)]


def text_kind(run):
    """What a language model's run reads, in words: lines (items, labeled or not) or prose."""
    return "prose" if run.data_config.kind == "stream" else "lines"


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
        if (run.model_name == "classifier") != (first.model_name == "classifier"):
            lm, clf = (run, first) if first.model_name == "classifier" else (first, run)
            raise MakemoreError(f"{lm.path} is a language model ({lm.model_name}) and {clf.path} a classifier; several "
                                "--run are averaged, which needs runs of one kind: language models or classifiers")
        if first.model_name != "classifier":
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
        elif run.model_config.labels != first.model_config.labels:
            mine, theirs = set(run.model_config.labels), set(first.model_config.labels)
            differ = (f"{run.path} has {', '.join(sorted(mine - theirs)) or 'none'} that {first.path} lacks, and lacks "
                      f"{', '.join(sorted(theirs - mine)) or 'none'}" if mine != theirs else "their labels are in another order")
            raise MakemoreError(f"{first.path} and {run.path} have other labels ({differ}); average classifiers "
                                "trained on the same labeled data")
    return runs
