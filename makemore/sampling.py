"""Generation: a batch of samples at once, one token per step, with temperature, top-k and a prefix.
Temperature 0 is greedy decoding: always the likeliest token, so every sample of a prefix is the same.

Line corpora start each sample at the boundary token and end it at the next one; stream corpora
start from the prefix (or a newline) and run for a fixed length. The model's own `start` / `step`
carry whatever state it needs, so a recurrent model costs one step per character. A Mixture of
several models samples from the mean of their distributions, as `makemore eval` scores them.
"""
import math
import unicodedata

import torch
import torch.nn.functional as F
from torch import nn

from makemore.errors import MakemoreError
from makemore.evaluate import average
from makemore.tokenizer import BOUNDARY


class Mixture(nn.Module):
    """Several language models of the same characters as one: each next character's distribution is the
    mean of theirs (weighted by weights, summing to 1, or equal), given the same text so far. Each model
    keeps its own state, so every one reads with its own context, window or recurrent state."""

    def __init__(self, models, weights=None):
        super().__init__()
        self.models, self.weights = nn.ModuleList(models), weights

    def mix(self, logits):
        """The log of the mean of the models' probabilities: logits, as generate reads them."""
        return average([x.float().log_softmax(-1) for x in logits], self.weights)

    def start(self, idx):
        logits, states = zip(*(model.start(idx) for model in self.models))
        return self.mix(logits), states

    def step(self, states, idx_next):
        logits, states = zip(*(model.step(state, idx_next) for model, state in zip(self.models, states)))
        return self.mix(logits), states


class Rereading:
    """A model without start and step of its own (one of the user's): each step reads the text so far
    again, cropped to what the model reads (its get_block_size(), as makemore.py's models say)."""

    def __init__(self, model):
        self.model = model
        block = getattr(model, "get_block_size", None)
        self.limit = block() if block else getattr(model, "context_size", None)

    def eval(self):
        self.model.eval()
        return self

    def parameters(self):
        return self.model.parameters()

    def start(self, idx):
        if self.limit is not None:
            idx = idx[:, -self.limit:]
        logits, _ = self.model(idx)
        return logits[:, -1], idx

    def step(self, state, idx_next):
        return self.start(torch.cat([state, idx_next], dim=1))


SAMPLE_BATCH = 1024  # samples drawn at once


@torch.no_grad()
def generate(model, tokenizer, n, kind, prefix="", max_len=None, temperature=1.0, top_k=None, seed=None, reverse=False,
             each=None):
    """Return n strings, each starting with prefix. reverse: the model reads right to left (trained with
    --reverse), so it writes each sample from its end: the prefix is where samples end. each(samples) hears
    every batch of samples as soon as it is drawn (the CLI prints it, and stops when its reader has gone)."""
    if n <= 0:
        raise MakemoreError(f"-n must be positive, got {n}")
    if not 0 <= temperature < math.inf:  # nan too
        raise MakemoreError(f"--temperature must be 0 (the likeliest character) or a finite number above it, got "
                            f"{temperature}; use e.g. 0.8 (lower is more conservative)")
    if top_k is not None and top_k <= 0:
        raise MakemoreError(f"--top-k must be positive, got {top_k}")
    if max_len is not None and max_len <= 0:
        raise MakemoreError(f"--max-len must be positive, got {max_len}")
    max_len = max_len or (64 if kind == "lines" else 500)
    if not hasattr(model, "start"):
        model = Rereading(model)
    device = next(model.parameters()).device
    generator = torch.Generator(device=device)
    generator.manual_seed(seed if seed is not None else torch.seed())
    model.eval()

    start = unicodedata.normalize("NFC", prefix[::-1] if reverse else prefix)  # as the training text was read
    prompt = tokenizer.encode(start, what="the prefix")
    if kind == "lines":
        prompt = [BOUNDARY] + prompt
    elif not prompt:
        prompt = tokenizer.encode("\n") if "\n" in tokenizer.stoi else [BOUNDARY]
    samples = []
    for first in range(0, n, SAMPLE_BATCH):  # in batches: memory stays bounded however many -n asks for
        rows = draw(model, prompt, min(SAMPLE_BATCH, n - first), kind, max_len, temperature, top_k, generator,
                    tokenizer.unk_id if tokenizer.unk else None)
        batch = [start + tokenizer.decode(row) for row in rows]
        batch = [s[::-1] for s in batch] if reverse else batch
        if each is not None:
            each(batch)
        samples += batch
    return samples


@torch.no_grad()
def draw(model, prompt, n, kind, max_len, temperature, top_k, generator, unk_id):
    """n rows of ids that follow the prompt (a line's ends at its boundary)."""
    device = next(model.parameters()).device
    idx = torch.tensor([prompt] * n, dtype=torch.long, device=device)  # (n, len(prompt))
    logits, state = model.start(idx)
    out = []
    done = torch.zeros(n, dtype=torch.bool, device=device)
    # the unknown-character id stands for characters; it never is one to write
    unknown = torch.arange(logits.size(-1), device=device) == unk_id if unk_id is not None else None
    for _ in range(max_len):
        if unknown is not None:
            logits = logits.masked_fill(unknown, float("-inf"))
        if temperature == 0:
            idx_next = logits.argmax(-1, keepdim=True)  # (n, 1)
        else:
            # from the likeliest down, in float64: a temperature as small as 5e-324 then leaves it at 0 and the
            # rest at -inf (greedy decoding), where float32 logits / 1e-300 are inf - inf
            logits = logits.double()
            logits = (logits - logits.amax(-1, keepdim=True)) / temperature  # (n, V)
            if top_k is not None:
                kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            idx_next = torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator)  # (n, 1)
        if kind == "lines":
            idx_next = idx_next.masked_fill(done[:, None], BOUNDARY)
            done |= idx_next[:, 0] == BOUNDARY
        out.append(idx_next)
        if done.all():
            break
        logits, state = model.step(state, idx_next)
    rows = torch.cat(out, dim=1).tolist()
    return [row[:row.index(BOUNDARY)] if kind == "lines" and BOUNDARY in row else row for row in rows]
