"""A small causal transformer language model (Vaswani et al. 2017, GPT-2 layout).

Token and position embeddings -> `n_layer` pre-norm blocks (causal self-attention with PyTorch's
fused scaled-dot-product attention, then a 4x MLP, each inside a residual) -> a final LayerNorm
and a linear layer to the logits. It reads at most `block_size` positions.
"""
import torch
import torch.nn.functional as F
from torch import nn

from makemore.errors import MakemoreError
from makemore.models.base import LanguageModel
from makemore.models.configs import TransformerConfig  # noqa: F401 - the model's config, where users look for it


class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.n_head, self.dropout = config.n_head, config.dropout
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.proj = nn.Linear(config.n_embd, config.n_embd)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x, cache=None):
        """x (B, T, C). cache: a list to keep this layer's keys and values in, for sampling: given empty, it
        receives those of x; given (k, v) of the positions before x, x's are appended, and x's positions attend
        to all of them (x is then the newest position)."""
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        if cache:  # earlier positions' keys and values, read from the cache rather than computed again
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        if cache is not None:
            cache[:] = [k, v]
        causal = cache is None or T > 1  # one new position may read every earlier one
        y = F.scaled_dot_product_attention(q, k, v, is_causal=causal, dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).reshape(B, T, C)  # heads side by side again
        return self.drop(self.proj(y))


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = nn.Sequential(
            nn.Linear(config.n_embd, 4 * config.n_embd), nn.GELU(),
            nn.Linear(4 * config.n_embd, config.n_embd), nn.Dropout(config.dropout),
        )

    def forward(self, x, cache=None):
        x = x + self.attn(self.ln_1(x), cache)
        return x + self.mlp(self.ln_2(x))


class Transformer(LanguageModel):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.max_input = config.block_size
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.Sequential(*(Block(config) for _ in range(config.n_layer)))
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size)
        for m in self.modules():  # GPT-2's init: small normal weights, zero biases
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def body(self, idx):
        T = idx.size(1)
        if T > self.config.block_size:
            raise MakemoreError(
                f"a sequence of {T} characters is longer than the transformer's --block-size {self.config.block_size}; "
                "pass a larger --block-size (or a smaller --seq-len)"
            )
        pos = torch.arange(T, device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))  # (B, T, n_embd)
        return self.ln_f(self.blocks(x))  # (B, T, n_embd)

    def head(self, features):
        return self.lm_head(features)  # (B, T, V)

    # Sampling with a key-value cache: while the text is shorter than block_size, each new character's keys
    # and values are computed once and kept, so a step reads one position rather than the whole text again.
    # Past block_size the window slides, every position's place changes (the position embedding is learned
    # per place), and a step reads the window again, exactly as training read it.
    @torch.no_grad()
    def start(self, idx):
        """Read a prompt (B, T); return the logits for the next token (B, V) and the state (ids, caches)."""
        idx = idx[:, -self.config.block_size:]
        pos = torch.arange(idx.size(1), device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))
        caches = [[] for _ in self.blocks]
        for block, cache in zip(self.blocks, caches):
            x = block(x, cache)
        return self.head(self.ln_f(x[:, -1])), (idx, caches)

    @torch.no_grad()
    def step(self, state, idx_next):
        """Append the sampled ids (B, 1); return the next logits (B, V) and the state."""
        idx, caches = state
        idx = torch.cat([idx, idx_next], dim=1)
        if idx.size(1) > self.config.block_size:
            return self.start(idx)
        pos = torch.full((1,), idx.size(1) - 1, device=idx.device)
        x = self.drop(self.wte(idx_next) + self.wpe(pos))  # (B, 1, n_embd)
        for block, cache in zip(self.blocks, caches):
            x = block(x, cache)
        return self.head(self.ln_f(x[:, -1])), (idx, caches)
