"""Training throughput of the MLP: our trainer against a plain reference loop, in one run.

The reference is the loop a tutorial writes: the lectures' (context, next character) windows in
a TensorDataset, a shuffling DataLoader, and a host-to-device copy of every batch. Ours is
makemore's Trainer: items kept on the device, only the batch indices drawn on the host. Both
train the same MLP with AdamW on the same names, and both report predicted characters per
second (padding never counts). Each side is timed after a warm-up, best of --repeats.

    python benchmarks/bench_mlp_throughput.py                  # CPU, or CUDA when present
    python benchmarks/bench_mlp_throughput.py --device cuda --steps 3000
"""
import argparse
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from makemore.config import DataConfig, TrainConfig
from makemore.data import load_corpus, make_batches
from makemore.device import autocast, pick_device
from makemore.models import build_model, model_config
from makemore.runs import Run
from makemore.tokenizer import CharTokenizer
from makemore.trainer import Trainer


def reference_throughput(items, tokenizer, cfg, device, steps, batch_windows):
    """A plain loop: windows in a TensorDataset, DataLoader batches copied to the device each step."""
    xs, ys = [], []
    for item in items:
        context = [0] * cfg.block_size
        for ch in tokenizer.encode(item) + [0]:
            xs.append(context)
            ys.append(ch)
            context = context[1:] + [ch]
    loader = DataLoader(TensorDataset(torch.tensor(xs), torch.tensor(ys)), batch_size=batch_windows, shuffle=True,
                        drop_last=True)
    model = nn.Sequential(nn.Embedding(tokenizer.vocab_size, cfg.n_embd), nn.Flatten(),
                          nn.Linear(cfg.block_size * cfg.n_embd, cfg.n_hidden), nn.Tanh(),
                          nn.Linear(cfg.n_hidden, tokenizer.vocab_size)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)

    def loop(n):
        done = 0
        while done < n:
            for x, y in loader:
                x, y = x.to(device), y.to(device)
                with autocast(device):
                    loss = F.cross_entropy(model(x).float(), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                done += 1
                if done == n:
                    break
        loss.item()  # wait for the device

    loop(min(50, steps))
    start = time.perf_counter()
    loop(steps)
    return steps * batch_windows / (time.perf_counter() - start)


def trainer_throughput(corpus, tokenizer, cfg, device, steps, batch_items, tmp):
    """makemore's Trainer, validation pushed past the end so only training is timed."""
    def run(n, name):
        torch.manual_seed(0)
        model = build_model("mlp", cfg).to(device)
        train_cfg = TrainConfig(max_steps=n, batch_size=batch_items, eval_interval=10**9, log_interval=n,
                                device=str(device))
        batches = make_batches(corpus, tokenizer, device, context_size=model.context_size)
        run_ = Run.create(Path(tmp) / name, "mlp", cfg, DataConfig(), train_cfg, tokenizer)
        trainer = Trainer(model, batches, train_cfg, run_.path, device, log=lambda _: None)
        trainer.train()
        return trainer.chars / trainer.seconds

    run(min(50, steps), "warmup")
    return run(steps, "timed")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="names", help="line corpus (default: the shipped names)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument(
        "--batch-items", type=int, default=64, help="our batch: items (about 7.5 characters each on names)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    device = pick_device(args.device)
    corpus = load_corpus(DataConfig(data=args.data), log=lambda _: None)
    tokenizer = CharTokenizer(corpus.chars())
    cfg = model_config("mlp", vocab_size=tokenizer.vocab_size)
    # the reference predicts as many characters per step as our batches hold on average
    mean_chars = sum(len(i) + 1 for i in corpus.train) / len(corpus.train)
    batch_windows = round(args.batch_items * mean_chars)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, mlp {cfg}")
    print(f"{args.steps} steps a side; ours {args.batch_items} items/step, reference {batch_windows} windows/step")
    with tempfile.TemporaryDirectory() as tmp:
        ours = max(
            trainer_throughput(corpus, tokenizer, cfg, device, args.steps, args.batch_items, tmp)
            for _ in range(args.repeats)
        )
        ref = max(
            reference_throughput(corpus.train, tokenizer, cfg, device, args.steps, batch_windows)
            for _ in range(args.repeats)
        )
    print(f"reference loop (DataLoader + copy): {ref:12,.0f} chars/s")
    print(f"makemore trainer:                   {ours:12,.0f} chars/s")
    print(f"ratio ours / reference:             {ours / ref:12.2f}x")


if __name__ == "__main__":
    main()
