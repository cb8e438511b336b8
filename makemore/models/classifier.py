"""A character classifier: a language model's body, a pooling over the item, and a linear head.

The body is any language model of the registry (its `body(idx)` gives features (B, T, H)), so a
classifier can start from a pretrained language model (`makemore finetune --from runs/<lm>`) or
from scratch (`makemore train --model classifier --encoder lstm`), with the same architecture.
Finetuning options follow ULMFiT (Howard & Ruder 2018): the body can stay frozen while the head
learns first, then unfreeze at once or gradually from the top, and learn at a smaller rate.

A classifier's contract is its own: `forward(idx, labels=None) -> (logits (B, n_classes), loss)`.
Rows are BOUNDARY + item, padded with BOUNDARY (see data.LabeledBatches); position t >= 1 holds
the features after reading the item's first t characters, so pooling reads positions 1..len.
A bidirectional classifier has a second body of the same architecture that reads each item right
to left (pretrained as a language model with --reverse), pooled alike; the head reads both
(ULMFiT averages two such classifiers; here one head learns from both directions).
"""
import torch
import torch.nn.functional as F
from torch import nn

from makemore.models.base import decay_groups
from makemore.models.configs import ClassifierConfig  # noqa: F401 - the model's config, where users look for it
from makemore.tokenizer import BOUNDARY


def reverse_items(idx):
    """Rows BOUNDARY + item + padding -> BOUNDARY + the item reversed + the same padding."""
    length = (idx != BOUNDARY).sum(1, keepdim=True)  # (B, 1): the item's characters
    pos = torch.arange(idx.shape[1], device=idx.device).expand_as(idx)
    inside = (pos >= 1) & (pos <= length)
    return idx.gather(1, torch.where(inside, length + 1 - pos, pos))


def pool(features, idx, how):
    """(B, T, H) features of rows BOUNDARY + item + padding -> (B, H) over each item's positions
    ((B, 3H) for concat)."""
    if how == "concat":
        return torch.cat([pool(features, idx, h) for h in ("last", "max", "mean")], dim=-1)
    mask = idx != BOUNDARY  # the item's positions: the start token and the padding are BOUNDARY
    mask[:, 0] = False
    if how == "last":
        last = mask.sum(1)  # the item's last position is its length
        return features[torch.arange(len(features), device=features.device), last]
    mask = mask.unsqueeze(-1)  # (B, T, 1)
    if how == "mean":
        return (features * mask).sum(1) / mask.sum(1)
    return features.masked_fill(~mask, float("-inf")).amax(1)


def thawed_by(cfg):
    """The step from which the whole body learns: after --freeze-steps, or twice that when it thaws gradually."""
    return cfg.freeze_steps * (2 if cfg.unfreeze == "gradual" else 1)


class Classifier(nn.Module):
    """Items to labels: forward(idx, labels=None) -> (logits (B, n_classes), loss), the loss None
    without labels. make_body() builds a language model whose body reads the item (the registry
    passes it, so that any language model can be the body)."""

    head_prefix = "classifier_head."

    def __init__(self, config, make_body):
        super().__init__()
        self.config = config
        self.encoder = make_body()
        self.backward = make_body() if config.bidirectional else None
        self.context_size = getattr(self.encoder, "context_size", None)  # a body of the user's may say nothing
        self.max_input = getattr(self.encoder, "max_input", None)
        n_features = self._n_features() * (3 if config.pooling == "concat" else 1) * len(self.bodies)
        self.head_drop = nn.Dropout(config.head_dropout)
        self.classifier_head = nn.Linear(n_features, config.n_classes)
        nn.init.normal_(self.classifier_head.weight, std=0.01)  # first loss about ln(n_classes)
        nn.init.zeros_(self.classifier_head.bias)
        self.register_buffer("class_weights", torch.ones(config.n_classes))

    @torch.no_grad()
    def _n_features(self):
        was_training = self.encoder.training
        self.encoder.eval()  # a batch of one would upset BatchNorm in training mode
        n = self.encoder.body(torch.zeros(1, 2, dtype=torch.long)).shape[-1]
        self.encoder.train(was_training)
        return n

    @property
    def bodies(self):
        """The forward body, and the backward one if the classifier has it."""
        return [body for body in (self.encoder, self.backward) if body is not None]

    def body(self, idx):
        features = pool(self.encoder.body(idx), idx, self.config.pooling)  # (B, H)
        if self.backward is None:
            return features
        backward = reverse_items(idx)
        return torch.cat([features, pool(self.backward.body(backward), backward, self.config.pooling)],
                         dim=-1)  # (B, 2H)

    def head(self, features):
        return self.classifier_head(self.head_drop(features))  # (B, n_classes)

    def forward(self, idx, labels=None):
        logits = self.head(self.body(idx))  # (B, n_classes)
        if labels is None:
            return logits, None
        return logits, F.cross_entropy(logits.float(), labels, weight=self.class_weights)

    def target_weight(self, labels):
        """What the loss averages over in a batch: its items' class weights (see the trainer's weight_of)."""
        return self.class_weights[labels].sum()

    def prepare(self, train):
        if self.config.balance == "loss":  # inverse class frequency, 1 on average over the items
            counts = torch.bincount(train.labels, minlength=self.config.n_classes).float()
            self.class_weights.copy_(len(train) / (self.config.n_classes * counts.clamp(min=1)))

    def body_parameters(self):
        """The bodies' parameters that the classifier uses, in order from input to output (a backward
        body's tensors interleaved with the forward body's, so that gradual unfreezing thaws both alike)."""
        used = []
        for body in self.bodies:
            unused = {id(p) for p in getattr(body, "head_parameters", list)()}  # a body of the user's may have none
            used.append([p for p in body.parameters() if id(p) not in unused])
        return [p for tensors in zip(*used) for p in tensors]

    def optimizer_groups(self, weight_decay):
        body, head = self.body_parameters(), self.classifier_head.parameters()
        return (decay_groups(body, weight_decay, lr_mult=self.config.body_lr_mult)
                + decay_groups(head, weight_decay, lr_mult=1.0))

    def before_step(self, step):
        """Freeze the body for freeze_steps, then unfreeze it at once or from the top down."""
        cfg = self.config
        if step > thawed_by(cfg):  # a resumed model starts thawed
            return
        params = self.body_parameters()
        bodies = len(self.bodies)  # their tensors interleaved: a level of depth is `bodies` tensors
        depth = len(params) // bodies
        for i, p in enumerate(params):
            if (
                cfg.unfreeze == "gradual"
            ):  # the top tensor unfreezes at freeze_steps, the bottom one near 2 * freeze_steps
                at = cfg.freeze_steps + cfg.freeze_steps * (depth - 1 - i // bodies) // depth
            else:
                at = cfg.freeze_steps
            p.requires_grad_(step >= at)
