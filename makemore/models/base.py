"""What every language model shares: the forward contract, the loss, optimizer groups, sampling steps.

Karpathy's contract: `forward(idx, targets=None) -> (logits, loss)`, ids (B, T) to logits
(B, T, V), where position t predicts token t+1 from tokens <= t. Subclasses define
`body(idx) -> (B, T, H)` and `head(features) -> (B, T, V)`, so a classifier can reuse a body.
"""
import torch
import torch.nn.functional as F
from torch import nn

from makemore.tokenizer import IGNORE


def token_loss(logits, targets):
    """Mean cross-entropy over the scored positions; float() so it is fp32 under bf16 autocast."""
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE)


def map_state(fn, state):
    """fn applied to a recurrent state (what forward_carried carries): an LSTM's (h, c) pair, or one tensor;
    None stays None."""
    if state is None:
        return None
    return tuple(fn(s) for s in state) if isinstance(state, (tuple, list)) else fn(state)


def decay_groups(parameters, weight_decay, **options):
    """AdamW's parameter groups: decay matrices (weights, embeddings); leave biases and norm gains alone.
    options (e.g. a learning-rate multiplier) go into both groups."""
    params = [p for p in parameters if p.requires_grad]
    return [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay, **options},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0, **options}]


class LanguageModel(nn.Module):
    head_prefix = "lm_head."  # parameters named so belong to the head, not the body
    # How many tokens (the current one included) a prediction reads from a sliding window; None
    # means all before it. max_input: the longest input the model accepts (None: any length).
    context_size = None
    max_input = None

    def body(self, idx):
        raise NotImplementedError

    def head(self, features):
        raise NotImplementedError

    def forward(self, idx, targets=None):
        logits = self.head(self.body(idx))  # (B, T, V)
        return logits, None if targets is None else token_loss(logits, targets)

    carries_state = False  # True: forward_carried continues from the previous window's state (TBPTT)

    def forward_carried(self, idx, targets, state, fresh):
        """Recurrent models: (logits, loss, detached state), starting from `state` except in `fresh` rows."""
        raise NotImplementedError

    def prepare(self, train):
        """Fit what can be fitted from the training batches before the first step (a new run only)."""

    def head_parameters(self):
        """The head's own parameters (a weight tied to the embedding is the body's)."""
        return [p for name, p in self.named_parameters() if name.startswith(self.head_prefix)]

    def optimizer_groups(self, weight_decay):
        return decay_groups(self.parameters(), weight_decay)

    # Sampling goes one token at a time through a state. The default state is the ids seen so
    # far, cropped to the context; recurrent models keep their hidden state instead.
    @torch.no_grad()
    def start(self, idx):
        """Read a prompt (B, T); return the logits for the next token (B, V) and the state."""
        limit = self.context_size or self.max_input
        if limit is not None:
            idx = idx[:, -limit:]
        logits, _ = self(idx)
        return logits[:, -1], idx

    @torch.no_grad()
    def step(self, state, idx_next):
        """Append the sampled ids (B, 1) to the state; return the next logits (B, V) and the state."""
        return self.start(torch.cat([state, idx_next], dim=1))
