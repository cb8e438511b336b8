"""LSTM speed, each side against its baseline in the same run.

1. Training characters/s: makemore's Trainer with the fused nn.LSTM (cuDNN on CUDA) against a
   reference loop that steps an nn.LSTMCell per layer in Python over time, as a from-scratch
   implementation does; same sizes, same batches of prose, AdamW, clipping.
2. Sampling characters/s: makemore's generate, which carries the recurrent state (one step
   per character), against re-running the whole text so far for every new character.

    python benchmarks/bench_lstm.py                   # tiny Shakespeare via MAKEMORE_DATA
    python benchmarks/bench_lstm.py --device cuda --n-hidden 512 --batch-size 64
"""
import argparse
import itertools
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from makemore.config import DataConfig, TrainConfig
from makemore.data import StreamBatches, load_corpus, make_batches
from makemore.device import pick_device
from makemore.models import build_model, model_config
from makemore.runs import Run
from makemore.sampling import generate
from makemore.tokenizer import CharTokenizer
from makemore.trainer import Trainer


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


class CellLoopLSTM(nn.Module):
    """The reference: LSTMCells stepped over time in Python."""

    def __init__(self, cfg):
        super().__init__()
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        sizes = [cfg.n_embd] + [cfg.n_hidden] * cfg.n_layer
        self.cells = nn.ModuleList(nn.LSTMCell(a, b) for a, b in itertools.pairwise(sizes))
        self.lm_head = nn.Linear(cfg.n_hidden, cfg.vocab_size)

    def forward(self, idx):
        B, T = idx.shape
        x = self.wte(idx)  # (B, T, n_embd)
        for cell in self.cells:
            h = c = x.new_zeros(B, cell.hidden_size)
            outs = []
            for t in range(T):
                h, c = cell(x[:, t], (h, c))
                outs.append(h)
            x = torch.stack(outs, dim=1)  # (B, T, n_hidden)
        return self.lm_head(x)


def reference_training(batches, cfg, device, steps, batch_size):
    model = CellLoopLSTM(cfg).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(0)

    def loop(n):
        chars = 0
        for _ in range(n):
            x, y = batches.sample(batch_size, generator)
            loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten(), ignore_index=-1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            chars += (y != -1).sum()
        return int(chars)

    loop(3)
    sync(device)
    start = time.perf_counter()
    chars = loop(steps)
    sync(device)
    return chars / (time.perf_counter() - start)


def our_training(corpus, tokenizer, cfg, device, steps, batch_size, seq_len, tmp):
    torch.manual_seed(0)
    model = build_model("lstm", cfg).to(device)
    train_cfg = TrainConfig(max_steps=steps, batch_size=batch_size, lr=2e-3, eval_interval=10**9, log_interval=steps,
                            device=str(device), precision="fp32")
    batches = {
        "train": make_batches(corpus, tokenizer, device, seq_len, model.context_size)["train"],
        "val": StreamBatches(corpus.val[:2000], tokenizer, device, seq_len),  # the end-of-run validation, kept short
    }
    run = Run.create(Path(tmp) / "lstm", "lstm", cfg, DataConfig(seq_len=seq_len), train_cfg, tokenizer)
    trainer = Trainer(model, batches, train_cfg, run.path, device, log=lambda _: None)
    trainer.train()
    return trainer.chars / trainer.seconds, model


def sampling(model, tokenizer, device, n, length, carried):
    start = time.perf_counter()
    if carried:
        generate(model, tokenizer, n, "stream", max_len=length, seed=0)
    else:  # re-read everything generated so far, for every new character
        idx = torch.tensor([tokenizer.encode("\n")] * n, device=device)
        generator = torch.Generator(device=device).manual_seed(0)
        with torch.no_grad():
            for _ in range(length):
                logits = model(idx)[0][:, -1]
                idx = torch.cat([idx, torch.multinomial(F.softmax(logits, -1), 1, generator=generator)], dim=1)
    sync(device)
    return n * length / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="shakespeare")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--n-hidden", type=int, default=256)
    parser.add_argument("--n-layer", type=int, default=2)
    parser.add_argument("--samples", type=int, default=8, help="samples generated at once")
    parser.add_argument("--length", type=int, default=200, help="characters per sample")
    args = parser.parse_args()

    device = pick_device(args.device)
    corpus = load_corpus(DataConfig(data=args.data, kind="stream", seq_len=args.seq_len), log=lambda _: None)
    tokenizer = CharTokenizer(corpus.chars())
    cfg = model_config("lstm", vocab_size=tokenizer.vocab_size, n_hidden=args.n_hidden, n_layer=args.n_layer)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, {cfg}")
    print(f"training: {args.steps} steps a side, batch {args.batch_size} x {args.seq_len} characters")
    with tempfile.TemporaryDirectory() as tmp:
        ours, model = our_training(corpus, tokenizer, cfg, device, args.steps, args.batch_size, args.seq_len, tmp)
    batches = make_batches(corpus, tokenizer, device, args.seq_len)["train"]
    ref = reference_training(batches, cfg, device, args.steps, args.batch_size)
    print(f"  reference (LSTMCell loop): {ref:12,.0f} chars/s")
    print(f"  makemore trainer (nn.LSTM): {ours:11,.0f} chars/s")
    print(f"  ratio ours / reference:    {ours / ref:12.2f}x")

    model.eval()
    sampling(model, tokenizer, device, args.samples, 10, carried=True)  # warm-up
    rerun = sampling(model, tokenizer, device, args.samples, args.length, carried=False)
    carried = sampling(model, tokenizer, device, args.samples, args.length, carried=True)
    print(f"sampling: {args.samples} samples of {args.length} characters")
    print(f"  re-running the prefix:     {rerun:12,.0f} chars/s")
    print(f"  carried state (makemore):  {carried:12,.0f} chars/s")
    print(f"  ratio carried / re-run:    {carried / rerun:12.2f}x")


if __name__ == "__main__":
    main()
