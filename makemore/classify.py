"""Classifier scores (accuracy, macro-F1, per-class precision and recall, confusion matrix) and
top-k predictions for new items."""
import torch

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


def split_scores(model, batches, batch_size, precision="auto"):
    """scores() of a whole split, and its loss (nats per item), from one pass over it."""
    from makemore.trainer import evaluate  # the trainer imports this module

    loss, true, pred = evaluate(model, batches, batch_size, precision, predictions=True)
    return {"loss": loss, **scores(true, pred, model.config.n_classes)}


@torch.no_grad()
def top_labels(model, tokenizer, items, labels, k=3):
    """For each item, its k likeliest labels as (label, probability) pairs."""
    device = next(model.parameters()).device
    for i, item in enumerate(items):
        if not item:
            raise MakemoreError(f"item {i + 1} is empty; pass non-empty items to classify")
        tokenizer.encode(item, f"the item {item!r}")  # an unknown character: say which item holds it
        if model.max_input is not None and len(item) >= model.max_input:  # the start token takes a position
            raise MakemoreError(f"item {i + 1} is {len(item)} characters long; this classifier reads at most "
                                f"{model.max_input - 1} (it was trained with --block-size {model.max_input}): shorten it")
    batches = LabeledBatches([(item, 0) for item in items], tokenizer, device, "the item", model.max_input)
    out = []
    for x, _ in batches.iter_all(1024):
        probs = model(x)[0].float().softmax(-1)
        p, i = probs.topk(min(k, probs.shape[-1]), dim=-1)
        out += [[(labels[j], q) for q, j in zip(row_p.tolist(), row_i.tolist())] for row_p, row_i in zip(p, i)]
    return out

