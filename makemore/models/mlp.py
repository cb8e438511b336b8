"""The multilayer perceptron language model of Bengio et al. (2003), as built in nn-zero-to-hero.

Each prediction reads the last `block_size` characters: their embeddings are concatenated and
passed through `n_layer` tanh layers, then a linear layer gives the next character's logits.
"""
from dataclasses import dataclass, field

import torch.nn as nn
import torch.nn.functional as F

from makemore.config import check_choice, check_fraction, check_positive
from makemore.models.base import LanguageModel
from makemore.tokenizer import BOUNDARY


@dataclass
class MLPConfig:
    vocab_size: int = 0  # filled from the tokenizer
    block_size: int = field(default=3, metadata={"help": "characters of context each prediction reads"})
    n_embd: int = field(default=24, metadata={"help": "embedding size of a character"})
    n_hidden: int = field(default=256, metadata={"help": "units in a hidden layer"})
    n_layer: int = field(default=1, metadata={"help": "number of hidden layers"})
    norm: str = field(default="none", metadata={"help": "normalisation before each tanh: none, batch or layer", "choices": ["none", "batch", "layer"]})
    dropout: float = field(default=0.0, metadata={"help": "dropout after each hidden layer"})

    def __post_init__(self):
        check_positive(self, "block_size", "n_embd", "n_hidden", "n_layer")
        check_choice(self, "norm")
        check_fraction(self, "dropout")


def context_windows(idx, block_size):
    """(B, T) ids -> (B, T, block_size): the window that ends at each position, BOUNDARY-padded on the left."""
    padded = F.pad(idx, (block_size - 1, 0), value=BOUNDARY)  # (B, T + block_size - 1)
    return padded.unfold(1, block_size, 1)  # (B, T, block_size)


class BatchNormTime(nn.BatchNorm1d):
    """BatchNorm over every (batch, time) position of a (B, T, C) tensor. In eval mode it uses the
    running statistics, so an item gives the same output alone as inside a batch."""

    def forward(self, x):
        return super().forward(x.flatten(0, 1)).view_as(x)


NORMS = {"none": lambda n: nn.Identity(), "batch": BatchNormTime, "layer": nn.LayerNorm}


class MLP(LanguageModel):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.context_size = config.block_size
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        layers = []
        fan_in = config.block_size * config.n_embd
        for _ in range(config.n_layer):
            linear = nn.Linear(fan_in, config.n_hidden, bias=config.norm == "none")  # a norm's shift replaces the bias
            layers += [linear, NORMS[config.norm](config.n_hidden), nn.Tanh(), nn.Dropout(config.dropout)]
            fan_in = config.n_hidden
        self.hidden = nn.Sequential(*layers)
        self.lm_head = nn.Linear(fan_in, config.vocab_size)
        self._init_weights()

    def _init_weights(self):
        # Kaiming init with the tanh gain 5/3 keeps pre-activations near unit variance, so the
        # units start out of saturation; a small output layer makes the first loss about ln(V).
        nn.init.normal_(self.wte.weight, std=1.0)
        for m in self.hidden:
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=(5 / 3) / m.in_features ** 0.5)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.normal_(self.lm_head.weight, std=0.01)
        nn.init.zeros_(self.lm_head.bias)

    def body(self, idx):
        ctx = context_windows(idx, self.config.block_size)  # (B, T, block_size)
        emb = self.wte(ctx).flatten(2)  # (B, T, block_size * n_embd)
        return self.hidden(emb)  # (B, T, n_hidden)

    def head(self, features):
        return self.lm_head(features)  # (B, T, V)
