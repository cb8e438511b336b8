"""Recurrent character language models (Graves 2013): one class for LSTM, GRU and plain RNN cells.

Embedding -> `n_layer` stacked recurrent layers of `n_hidden` units (torch's fused modules, so
cuDNN runs them on CUDA) with dropout between layers -> a linear layer to the logits. The
recurrent state is returned by `run`, so sampling costs one step per character.
"""
import contextlib

import torch
from torch import nn

from makemore.models.base import LanguageModel, map_state, token_loss
from makemore.models.configs import RecurrentConfig  # noqa: F401 - the model's config, where users look for it

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


class RecurrentLM(LanguageModel):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.rnn = CELLS[config.cell](
            config.n_embd, config.n_hidden, num_layers=config.n_layer, batch_first=True,
            dropout=config.dropout if config.n_layer > 1 else 0.0,
        )
        self.drop = nn.Dropout(config.dropout)
        self.lm_head = nn.Linear(config.n_hidden, config.vocab_size)
        if config.tie_weights:
            self.lm_head.weight = self.wte.weight
        self._init_weights()

    def _init_weights(self):
        if self.config.cell == "lstm":
            # Forget-gate biases of 1 let memory survive early training (Jozefowicz et al. 2015).
            for name, p in self.rnn.named_parameters():
                if name.startswith("bias_ih"):
                    n = self.config.n_hidden
                    p.data[n:2 * n] = 1.0
        nn.init.normal_(self.lm_head.weight, std=0.01)  # first loss about ln(V); a tied embedding starts small too
        nn.init.zeros_(self.lm_head.bias)

    def run(self, idx, state=None):
        """(B, T) ids and an optional state -> features (B, T, n_hidden) and the new state."""
        x = self.drop(self.wte(idx))  # (B, T, n_embd)
        # The recurrence runs in fp32: cuDNN's bf16 RNN support varies across versions, and the
        # recurrence accumulates error over time steps where a matmul does not.
        fp32 = torch.autocast(idx.device.type, enabled=False) if idx.device.type != "meta" else contextlib.nullcontext()
        with fp32:  # meta: a model sized without memory (runs.Run.shape), which autocast does not know
            out, state = self.rnn(x.float(), state)  # (B, T, n_hidden)
        return self.drop(out), state

    def body(self, idx):
        return self.run(idx)[0]

    carries_state = True

    def forward_carried(self, idx, targets, state, fresh):
        """Truncated BPTT: go on from the last window's state (wherever a checkpoint left it);
        rows marked fresh start from zeros."""
        if state is not None:
            keep = (~fresh).to(idx.device, torch.float32)[None, :, None]  # (1, B, 1) against (layers, B, H)
            state = map_state(lambda s: s.to(idx.device) * keep, state)
        features, state = self.run(idx, state)
        logits = self.head(features)
        return logits, token_loss(logits, targets), map_state(torch.Tensor.detach, state)

    def head(self, features):
        return self.lm_head(features)

    @torch.no_grad()
    def start(self, idx):
        features, state = self.run(idx)
        return self.head(features[:, -1]), state

    @torch.no_grad()
    def step(self, state, idx_next):
        features, state = self.run(idx_next, state)
        return self.head(features[:, -1]), state
