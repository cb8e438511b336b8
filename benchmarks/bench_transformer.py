"""Transformer training speed per step: makemore's trainer against a makemore.py-style loop, in one run.

Configuration of the comparison in the model-zoo issue: batch 32, n_layer 4, n_head 4, n_embd 64,
context 16 (names). The reference is written here in the style of karpathy/makemore's
makemore.py (facts of that program, not its code): attention as explicit matmuls with a
triangular mask and softmax, GELU by its tanh formula, every item padded to the longest name,
a DataLoader over the padded items and a host-to-device copy per batch, AdamW (lr 5e-4,
weight decay 0.01, betas 0.9/0.99). Ours: the Trainer with fused scaled-dot-product attention,
device-resident items and bf16 autocast on CUDA.

    python benchmarks/bench_transformer.py --device cuda --steps 500
    python benchmarks/bench_transformer.py --ema 0.999   # also: what --ema's moving average costs a step
    python benchmarks/bench_transformer.py --input-noise 0.05   # also: what noising the inputs costs a step

It also times sampling, as `makemore sample` does it (a key-value cache while the text is shorter than the
block, then the window read again), against reading the whole text again for every character (makemore.py and
nanoGPT's way), on a model of nanoGPT's CPU recipe (4 layers, 4 heads, 128 wide) with --sample-block context.
"""
import argparse
import math
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, RandomSampler, TensorDataset

from makemore.config import DataConfig, TrainConfig, option_name
from makemore.data import LineBatches, load_corpus
from makemore.device import pick_device
from makemore.models import build_model, model_config
from makemore.runs import Run
from makemore.sampling import generate
from makemore.tokenizer import BOUNDARY, IGNORE, CharTokenizer
from makemore.trainer import Trainer


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


class ExplicitAttentionBlock(nn.Module):
    def __init__(self, n_embd, n_head, block_size):
        super().__init__()
        self.n_head = n_head
        self.ln_1, self.ln_2 = nn.LayerNorm(n_embd), nn.LayerNorm(n_embd)
        self.qkv, self.proj = nn.Linear(n_embd, 3 * n_embd), nn.Linear(n_embd, n_embd)
        self.fc, self.out = nn.Linear(n_embd, 4 * n_embd), nn.Linear(4 * n_embd, n_embd)
        self.register_buffer("mask", torch.tril(torch.ones(block_size, block_size)).bool())

    def attention(self, x):
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.n_head, -1).transpose(1, 2) for t in self.qkv(x).split(C, dim=2))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))
        att = att.masked_fill(~self.mask[:T, :T], float("-inf")).softmax(dim=-1)
        return self.proj((att @ v).transpose(1, 2).reshape(B, T, C))

    def forward(self, x):
        x = x + self.attention(self.ln_1(x))
        h = self.fc(self.ln_2(x))
        h = 0.5 * h * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (h + 0.044715 * h.pow(3))))
        return x + self.out(h)


class ReferenceTransformer(nn.Module):
    def __init__(self, vocab_size, block_size, n_layer, n_head, n_embd):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab_size, n_embd), nn.Embedding(block_size, n_embd)
        self.blocks = nn.Sequential(*(ExplicitAttentionBlock(n_embd, n_head, block_size) for _ in range(n_layer)))
        self.ln_f, self.lm_head = nn.LayerNorm(n_embd), nn.Linear(n_embd, vocab_size, bias=False)

    def forward(self, idx):
        x = self.wte(idx) + self.wpe(torch.arange(idx.size(1), device=idx.device))
        return self.lm_head(self.ln_f(self.blocks(x)))


def reference_ms_per_step(train, cfg, device, steps, batch_size):
    data = TensorDataset(train.x.cpu(), train.y.cpu())  # every item padded to the longest
    sampler = RandomSampler(data, replacement=True, num_samples=10**9)
    batches = iter(DataLoader(data, batch_size=batch_size, sampler=sampler))
    model = ReferenceTransformer(cfg.vocab_size, cfg.block_size, cfg.n_layer, cfg.n_head, cfg.n_embd).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.01, betas=(0.9, 0.99), eps=1e-8)

    def loop(n):
        for _ in range(n):
            x, y = (t.to(device) for t in next(batches))
            loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten(), ignore_index=IGNORE)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        sync(device)

    loop(10)
    start = time.perf_counter()
    loop(steps)
    return 1000 * (time.perf_counter() - start) / steps


def our_ms_per_step(corpus, tokenizer, cfg, device, steps, batch_size, tmp, **train):
    model = build_model("transformer", cfg).to(device)
    train_cfg = TrainConfig(max_steps=steps, batch_size=batch_size, eval_interval=10**9, log_interval=steps,
                            device=str(device), **train)
    batches = {
        "train": LineBatches(corpus.train, tokenizer, device),
        "val": LineBatches(corpus.val[:64], tokenizer, device),  # the end-of-run validation, kept short
    }
    name = "-".join(f"{k}{v}" for k, v in train.items()) or "plain"
    run = Run.create(Path(tmp) / name, "transformer", cfg, DataConfig(), train_cfg, tokenizer)
    trainer = Trainer(model, batches, train_cfg, run.path, device, log=lambda _: None)
    trainer.train()  # seconds count training only; the first steps include warm-up, as in a real run
    return 1000 * trainer.seconds / steps, batches["train"]


def sampling(model, tokenizer, device, n, length, cached):
    """Characters per second of n samples of length characters, from a newline, at temperature 1."""
    start = time.perf_counter()
    if cached:
        generate(model, tokenizer, n, "stream", max_len=length, seed=0)
    else:  # the text so far, cropped to the block, read again for every new character
        prompt = tokenizer.encode("\n") if "\n" in tokenizer.stoi else [BOUNDARY]  # as generate starts prose
        idx = torch.tensor([prompt] * n, device=device)
        generator = torch.Generator(device=device).manual_seed(0)
        with torch.no_grad():
            for _ in range(length):
                logits = model(idx[:, -model.config.block_size:])[0][:, -1]
                idx = torch.cat([idx, torch.multinomial(F.softmax(logits, -1), 1, generator=generator)], dim=1)
    sync(device)
    return n * length / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="names")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--ema", type=float, default=0.0, help="also time our trainer with this --ema")
    parser.add_argument("--input-noise", type=float, default=0.0, help="also time our trainer with this --input-noise")
    parser.add_argument("--samples", type=int, default=20, help="samples generated at once")
    parser.add_argument("--length", type=int, default=500, help="characters per sample")
    parser.add_argument("--sample-block", type=int, default=256, help="the sampled model's --block-size")
    args = parser.parse_args()

    device = pick_device(args.device)
    corpus = load_corpus(DataConfig(data=args.data), log=lambda _: None)
    tokenizer = CharTokenizer(corpus.chars())
    cfg = model_config("transformer", vocab_size=tokenizer.vocab_size, block_size=16, n_layer=4, n_head=4, n_embd=64,
                       dropout=0.0)
    print(f"device {device}, torch {torch.__version__}, {cfg}, batch {args.batch_size}, {args.steps} steps a side")
    with tempfile.TemporaryDirectory() as tmp:
        ours, train = our_ms_per_step(corpus, tokenizer, cfg, device, args.steps, args.batch_size, tmp)
        variants = {}  # the options timed beside the plain trainer
        for name, value in {"ema": args.ema, "input_noise": args.input_noise}.items():
            if value:
                variants[f"{option_name(name)} {value:g}"], _ = our_ms_per_step(
                    corpus, tokenizer, cfg, device, args.steps, args.batch_size, tmp, **{name: value})
    ref = reference_ms_per_step(train, cfg, device, args.steps, args.batch_size)
    print(f"reference (makemore.py style): {ref:8.2f} ms/step")
    print(f"makemore trainer:              {ours:8.2f} ms/step")
    print(f"speed-up ours vs reference:    {ref / ours:8.2f}x")
    for option, ms in variants.items():
        print(f"makemore trainer, {option}: {ms:8.2f} ms/step ({ms / ours:.3f}x the time without)")

    torch.manual_seed(0)
    big = model_config("transformer", vocab_size=tokenizer.vocab_size, block_size=args.sample_block, n_layer=4,
                       n_head=4, n_embd=128, dropout=0.0)
    model = build_model("transformer", big).to(device).eval()
    sampling(model, tokenizer, device, args.samples, 5, cached=True)  # warm-up
    reread = sampling(model, tokenizer, device, args.samples, args.length, cached=False)
    cached = sampling(model, tokenizer, device, args.samples, args.length, cached=True)
    print(f"sampling: {args.samples} samples of {args.length} characters, block {args.sample_block}")
    print(f"  re-read every character:  {reread:12,.0f} chars/s")
    print(f"  makemore sample (cached): {cached:12,.0f} chars/s")
    print(f"  ratio cached / re-read:   {cached / reread:12.2f}x")


if __name__ == "__main__":
    main()
