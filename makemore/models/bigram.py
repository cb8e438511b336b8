"""The bigram model of nn-zero-to-hero part 1: the next character depends on the current one alone.

Two ways to fit the same (V, V) table of logits, as in the lecture:
- counts: exact maximum likelihood with add-k smoothing, log((N[a, b] + k) / sum_b (N[a, b] + k)),
  set before training from every (character, next character) pair of the training split;
- gradient: the one-layer neural net, one-hot(idx) @ W, trained by the usual loop from zeros,
  which must reach the same loss.
"""
import torch
import torch.nn.functional as F
from torch import nn

from makemore.models.base import LanguageModel
from makemore.models.configs import BigramConfig  # noqa: F401 - the model's config, where users look for it
from makemore.tokenizer import IGNORE


class Bigram(LanguageModel):
    context_size = 1
    head_prefix = "W"  # the body is a one-hot of the last character; all weights are the head's

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.W = nn.Parameter(0.01 * torch.randn(config.vocab_size, config.vocab_size))  # about uniform to start

    def prepare(self, train):
        if self.config.fit != "counts":
            return
        V = self.config.vocab_size
        counts = torch.zeros(V * V, dtype=torch.float64, device=self.W.device)
        for x, y in train.iter_all(4096):
            keep = y != IGNORE
            counts += torch.bincount(x[keep] * V + y[keep], minlength=V * V)
        counts = counts.view(V, V) + self.config.smoothing
        with torch.no_grad():
            self.W.copy_((counts / counts.sum(1, keepdim=True)).log())

    def body(self, idx):
        return F.one_hot(idx, self.config.vocab_size).float()  # (B, T, V)

    def head(self, features):
        return features @ self.W  # (B, T, V): row idx of W
