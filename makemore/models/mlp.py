"""Multilayer perceptron language models, as built in nn-zero-to-hero.

MLP: the model of Bengio et al. (2003). Each prediction reads the last `block_size` characters:
their embeddings are concatenated and passed through `n_layer` tanh layers, then a linear layer
gives the next character's logits.

WaveNet: the hierarchical MLP of the lectures' part 5 (after van den Oord et al. 2016). The same
window is merged in pairs, layer by layer (8 characters -> 4 pairs -> 2 -> 1), so the context grows
with depth instead of being squashed into one layer.
"""
import itertools
import math

import torch.nn.functional as F
from torch import nn

from makemore.models.base import LanguageModel
from makemore.models.configs import MLPConfig, WaveNetConfig  # noqa: F401 - the models' configs, where users look
from makemore.tokenizer import BOUNDARY


def context_windows(idx, block_size):
    """(B, T) ids -> (B, T, block_size): the window that ends at each position, BOUNDARY-padded on the left."""
    padded = F.pad(idx, (block_size - 1, 0), value=BOUNDARY)  # (B, T + block_size - 1)
    return padded.unfold(1, block_size, 1)  # (B, T, block_size)


class FlatBatchNorm(nn.BatchNorm1d):
    """BatchNorm over every position of a (..., C) tensor: batch, time and any groups. In eval mode it
    uses the running statistics, so an item gives the same output alone as inside a batch."""

    def forward(self, x):
        return super().forward(x.reshape(-1, x.shape[-1])).view_as(x)


NORMS = {"none": lambda n: nn.Identity(), "batch": FlatBatchNorm, "layer": nn.LayerNorm}


def tanh_layer(fan_in, n_hidden, norm, dropout):
    """Linear -> norm -> tanh -> dropout, with the lectures' init: Kaiming with the tanh gain 5/3, which
    keeps a deep stack's activations from shrinking layer by layer. From unit-variance inputs (the
    embeddings) the pre-activations have a standard deviation of about 5/3, so about a fifth of a new
    MLP's tanh outputs are saturated (`makemore inspect` of a --max-steps 0 run: 20%)."""
    linear = nn.Linear(fan_in, n_hidden, bias=norm == "none")  # a norm's shift replaces the bias
    nn.init.normal_(linear.weight, std=(5 / 3) / fan_in ** 0.5)
    if linear.bias is not None:
        nn.init.zeros_(linear.bias)
    return nn.Sequential(linear, NORMS[norm](n_hidden), nn.Tanh(), nn.Dropout(dropout))


def output_layer(n_hidden, vocab_size):
    """A small output layer, so that the first loss is about ln(V)."""
    lm_head = nn.Linear(n_hidden, vocab_size)
    nn.init.normal_(lm_head.weight, std=0.01)
    nn.init.zeros_(lm_head.bias)
    return lm_head


class MLP(LanguageModel):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.context_size = config.block_size
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        sizes = [config.block_size * config.n_embd] + [config.n_hidden] * config.n_layer
        self.hidden = nn.Sequential(
            *(tanh_layer(a, b, config.norm, config.dropout) for a, b in itertools.pairwise(sizes))
        )
        self.lm_head = output_layer(config.n_hidden, config.vocab_size)

    def body(self, idx):
        ctx = context_windows(idx, self.config.block_size)  # (B, T, block_size)
        emb = self.wte(ctx).flatten(2)  # (B, T, block_size * n_embd)
        return self.hidden(emb)  # (B, T, n_hidden)

    def head(self, features):
        return self.lm_head(features)  # (B, T, V)


class WaveNet(LanguageModel):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.context_size = config.block_size
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        n_merges = int(math.log2(config.block_size))
        sizes = [2 * config.n_embd] + [2 * config.n_hidden] * (n_merges - 1)
        self.merges = nn.ModuleList(
            tanh_layer(fan_in, config.n_hidden, config.norm, config.dropout) for fan_in in sizes
        )
        self.lm_head = output_layer(config.n_hidden if n_merges else config.n_embd, config.vocab_size)

    def body(self, idx):
        x = self.wte(context_windows(idx, self.config.block_size))  # (B, T, block_size, n_embd)
        for merge in self.merges:
            B, T, G, C = x.shape
            x = merge(x.reshape(B, T, G // 2, 2 * C))  # neighbours merged: (B, T, G/2, n_hidden)
        return x.squeeze(2)  # (B, T, n_hidden)

    def head(self, features):
        return self.lm_head(features)  # (B, T, V)
