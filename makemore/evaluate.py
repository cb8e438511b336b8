"""Scoring, as pure functions of a model and the batches of a split: the whole split's loss and
log-probabilities (eval mode, no gradients), a classifier's scores (accuracy, macro-F1, per-label
precision and recall, the confusion matrix), top-k labels of new items, and the mixture of several
models' probabilities (an ensemble) with the weights that score held-out data best.
"""
import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from makemore import distributed
from makemore.data import LabeledBatches
from makemore.device import autocast
from makemore.errors import MakemoreError
from makemore.tokenizer import IGNORE


class Validation(NamedTuple):
    """What the trainer hears from a validation: the val loss, what the best checkpoint minimises, more
    TensorBoard scalars ({tag: value}) and more text for the log line."""

    loss: float
    criterion: float
    scalars: dict = {}  # noqa: RUF012 - read only
    text: str = ""


def device_of(model):
    return next(model.parameters()).device


def outputs(model, batches, batch_size, precision="auto", progress=None):
    """(logits, targets) of every batch of a whole split, in eval mode and without gradients; the model
    goes back to the mode it was in once the split is read. progress: the label of a bar of the targets
    read, shown on a terminal (a long text's split can take minutes on a CPU). Under torchrun each process reads
    its share of the batches (distributed.shard), and the callers add up or gather what they make of them."""
    was_training = model.training
    model.eval()
    device = device_of(model)
    bar = tqdm(total=batches.n_targets, desc=progress, unit=batches.unit, unit_scale=True, leave=False,
               disable=None if progress else True, dynamic_ncols=True)
    try:
        for x, y in distributed.shard(batches.iter_all(batch_size)):
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
    return distributed.total(float(total), device_of(model)) / batches.n_targets


def val_loss(batches, config):
    """The score a language model is validated by: the loss of the whole val split, which the best
    checkpoint minimises (the trainer's default; see makemore.tasks)."""
    def score(model):
        loss = evaluate(model, batches["val"], config.eval_batch_size, config.precision)
        return Validation(loss, loss)
    return score


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
    return torch.cat(distributed.gathered(logps)), torch.cat(distributed.gathered(targets))


def log_probs(model, batches, batch_size, precision="auto", progress=None):
    """Log-probabilities of the labels for every item of a split, (N, C) float32 on the CPU in the
    split's order, and the items' labels (N,). progress: the label of a bar of the items read."""
    out, true = [], []
    for logits, y in outputs(model, batches, batch_size, precision, progress):
        out.append(logits.float().log_softmax(-1).cpu())
        true.append(y.cpu())
    return batches.merged(torch.cat(distributed.gathered(out)), torch.cat(distributed.gathered(true)))


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


def scores_of(logp, true):
    """scores() of the likeliest labels of log-probabilities (N, C), and their loss (nats per item)."""
    loss = -logp.gather(1, true[:, None]).double().mean().item()
    return {"loss": loss, **scores(true, logp.argmax(-1), logp.shape[1])}


def split_scores(model, batches, batch_size, precision="auto"):
    """scores() of a whole split, and its loss (nats per item), from one pass over it."""
    return scores_of(*log_probs(model, batches, batch_size, precision))


def any_label_accuracy(pairs, pred):
    """Items that carry several labels are a pair each, and one prediction can be right for one pair only:
    the share of distinct items whose prediction is any of their labels, and how many items carry several."""
    labels, predicted = {}, {}
    for (item, label), p in zip(pairs, pred.tolist()):
        labels.setdefault(item, set()).add(label)
        predicted[item] = p
    right = sum(predicted[item] in mine for item, mine in labels.items())
    return right / max(1, len(labels)), sum(len(mine) > 1 for mine in labels.values()), len(labels)


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


@torch.no_grad()
def item_log_probs(model, tokenizer, items, max_item_len=None, batch_size=1024):
    """Log-probabilities of the labels (N, C) of new items, on the CPU; an item the model cannot
    read (empty, an unknown character) is a one-line error that names it. An item longer than
    max_item_len (or than the model reads) is read in pieces (see LabeledBatches)."""
    device = next(model.parameters()).device
    for i, item in enumerate(items):
        if not item:
            raise MakemoreError(f"item {i + 1} is empty; pass non-empty items to classify")
    batches = LabeledBatches([(item, 0) for item in items], tokenizer, device, "the items", model.max_input,
                             max_item_len, pieces=True)
    return log_probs(model, batches, batch_size)[0]


def top_labels(logp, labels, k=3):
    """For each row of log-probabilities, its k likeliest labels as (label, probability) pairs."""
    p, i = logp.exp().topk(min(k, logp.shape[-1]), dim=-1)
    return [[(labels[j], q) for q, j in zip(row_p.tolist(), row_i.tolist())] for row_p, row_i in zip(p, i)]
