"""What every language model shares: the forward contract, the loss, optimizer groups, sampling steps.

Karpathy's contract: `forward(idx, targets=None) -> (logits, loss)`, ids (B, T) to logits
(B, T, V), where position t predicts token t+1 from tokens <= t. Subclasses define
`body(idx) -> (B, T, H)` and `head(features) -> (B, T, V)`, so a classifier can reuse a body.
"""
import torch
import torch.nn.functional as F
from torch import nn

from makemore.errors import MakemoreError
from makemore.tokenizer import IGNORE

CONTRACT = ("the contract: forward(idx, targets=None) returns (logits, loss), logits (B, T, vocab_size), loss one "
            "number (F.cross_entropy(logits.view(-1, vocab_size), targets.view(-1), ignore_index=-1)), None without "
            "targets")


def token_loss(logits, targets):
    """Mean cross-entropy over the scored positions; float() so it is fp32 under bf16 autocast."""
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE)


def described(value):
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)}"
    return f"{type(value).__name__} {value!r}"[:80]


@torch.no_grad()
def check_contract(model, x, y, vocab_size):
    """A language model of the user's own, tried on a first batch (x, y) before the run writes anything: a
    forward that breaks the contract is one line that says what it returned, not a traceback from the loss or
    from backward. On the CPU, a target of -1 is put in, to see that the loss skips it."""
    was_training = model.training
    model.eval()
    try:
        out = model(x)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise MakemoreError(f"your model's forward(idx) returned {described(out)}; {CONTRACT}")
        logits = out[0]
        want = (*x.shape, vocab_size)
        if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != want:
            raise MakemoreError(f"your model's logits are {described(logits)}, where {want} (B, T, vocab_size) was "
                                f"due; {CONTRACT}")
        if x.device.type == "cpu":  # on a GPU an index out of range is a device-side assert, which ends the process
            y = y.clone()
            y[:, -1] = IGNORE
        try:
            out = model(x, y)
        except (RuntimeError, IndexError, ValueError) as e:
            reason = (str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__).rstrip(".")
            skip = " (a target of -1 marks a position to skip)" if "out of bounds" in reason or "-1" in reason else ""
            raise MakemoreError(f"your model's forward(idx, targets) failed on the first batch: {reason}{skip}; "
                                f"{CONTRACT}") from None
        loss = out[1] if isinstance(out, (tuple, list)) and len(out) == 2 else out
        if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
            raise MakemoreError(f"your model's loss is {described(loss)}, where one number (a 0-d tensor) was due; "
                                f"{CONTRACT}")
        if not loss.dtype.is_floating_point:
            raise MakemoreError(f"your model's loss is a tensor of {loss.dtype}, where a float was due; {CONTRACT}")
    finally:
        model.train(was_training)


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
