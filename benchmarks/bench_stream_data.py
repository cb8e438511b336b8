"""Reading prose: makemore's compact ids (in memory, and memory-mapped from the cache) against the
reference they replaced, a per-character encode into int64 tensors padded for each split.

The text is --mb megabytes (copies of --data), a file, or with --hf a Hugging Face dataset of its lines
(a folder read as hf:<folder>; the reference reads its column value by value, as makemore did before it
read Arrow batches). Each way runs in a process of its own, so that its
peak memory is its own, and reports the seconds from the file to the batches of all three splits,
the peak resident memory, and the time to draw one training batch of --batch-size x --seq-len
(best of three timings of --draws batches).
"mapped, first" encodes the text into an empty cache; "mapped" opens what it wrote.

    python benchmarks/bench_stream_data.py --mb 100
    python benchmarks/bench_stream_data.py --mb 100 --hf
    python benchmarks/bench_stream_data.py --mb 1000 --device cuda
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from makemore.config import DataConfig
from makemore.data import load_corpus, make_batches
from makemore.data import sources as data
from makemore.data.corpus import split_sizes
from makemore.data.sources import read_text_file
from makemore.device import pick_device
from makemore.tokenizer import BOUNDARY, IGNORE, CharTokenizer

WAYS = ["reference", "in memory", "mapped, first", "mapped"]


class ReferenceBatches:
    """The reference: the text encoded character by character to int64, padded copies for x and y."""

    def __init__(self, text, tokenizer, device, seq_len):
        ids = torch.tensor(tokenizer.encode(text), dtype=torch.long)
        self.seq_len, self.n = seq_len, len(ids)
        self.x = torch.cat([ids, torch.full((seq_len,), BOUNDARY)]).to(device)
        self.y = torch.cat([ids[1:], torch.full((seq_len + 1,), IGNORE)]).to(device)
        self.offsets = torch.arange(seq_len, device=device)

    def sample(self, batch_size, generator):
        pos = torch.randint(max(1, self.n - self.seq_len), (batch_size,), generator=generator)
        pos = pos.to(self.offsets.device)[:, None] + self.offsets
        return self.x[pos], self.y[pos]


def one_way(way, path, device, batch_size, seq_len, draws):
    """Runs in its own process: the figures of one way, as JSON on stdout."""
    torch.set_num_threads(1)  # a batch is a few small gathers; more threads only add noise to their timing
    start = time.perf_counter()
    hf = path.is_dir()
    cfg = DataConfig(data=f"hf:{path}" if hf else str(path), kind="stream", seq_len=seq_len)
    if way == "reference":
        if hf:
            splits = data.open_hf(str(path)).values()
            text = "\n".join(str(t) for split in splits for t in split["text"] if t is not None)
        else:
            text = read_text_file(path, "utf-8")
        tokenizer = CharTokenizer.from_text(text)
        n_train, n_val, _ = split_sizes(len(text), cfg)
        parts = text[:n_train], text[n_train:n_train + n_val], text[n_train + n_val:]
        batches = [ReferenceBatches(part, tokenizer, device, seq_len) for part in parts]
    else:
        data.MAP_BYTES = 0 if way.startswith("mapped") else float("inf")
        corpus = load_corpus(cfg, log=lambda _: None)
        batches = list(make_batches(corpus, CharTokenizer(corpus.chars()), device, seq_len).values())
    ready = time.perf_counter() - start
    generator = torch.Generator().manual_seed(0)
    for _ in range(10):  # warm-up
        batches[0].sample(batch_size, generator)
    per_batch = float("inf")
    for _ in range(3):  # best of three
        start = time.perf_counter()
        for _ in range(draws):
            batches[0].sample(batch_size, generator)
        if device.type == "cuda":
            torch.cuda.synchronize()
        per_batch = min(per_batch, (time.perf_counter() - start) / draws)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"ready_s": ready, "peak_mib": peak, "batch_us": per_batch * 1e6}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="shakespeare", help="the text that is repeated to --mb megabytes")
    parser.add_argument("--mb", type=float, default=100)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--draws", type=int, default=2000, help="batches drawn per timing (best of three)")
    parser.add_argument("--hf", action="store_true", help="read the text as a Hugging Face dataset of its lines")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the way a child process measures
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    device = pick_device(args.device)
    if args.one:
        return one_way(args.one, Path(args.file), device, args.batch_size, args.seq_len, args.draws)

    seed = read_text_file(data.local_files(args.data)[1][0], "utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "prose"
        path.mkdir()
        with open(path / "train.txt", "w", encoding="utf-8") as f:
            f.writelines(seed for _ in range(max(1, round(args.mb * 1e6 / len(seed.encode())))))
        size = (path / "train.txt").stat().st_size
        env = {**os.environ, "MAKEMORE_CACHE": str(Path(tmp) / "cache"), "HF_HOME": str(Path(tmp) / "hf"),
               "HF_HUB_OFFLINE": "1"}
        if args.hf:  # datasets converts the folder to Arrow files once, before any way is timed
            subprocess.run([sys.executable, "-c", f"import datasets; datasets.load_dataset({str(path)!r})"],
                           env=env, capture_output=True, check=True)
        else:
            path = path / "train.txt"
        print(f"device {device}, torch {torch.__version__}; {size / 1e6:,.1f} MB of prose ({args.data} "
              f"repeated{', a Hugging Face dataset of its lines' if args.hf else ''}); batches of {args.batch_size} x "
              f"{args.seq_len}")
        figures = {}
        for way in WAYS:
            child = [sys.executable, __file__, "--one", way, "--file", str(path), "--device", str(device),
                     "--batch-size", str(args.batch_size), "--seq-len", str(args.seq_len), "--draws", str(args.draws)]
            out = subprocess.run(child, env=env, capture_output=True, text=True, check=True).stdout
            figures[way] = json.loads(out.strip().splitlines()[-1])
    ref = figures["reference"]
    print(f"{'way':<16}{'ready (s)':>11}{'peak memory (MiB)':>19}{'per batch (us)':>16}   ratios to the reference")
    for way, f in figures.items():
        print(f"{way:<16}{f['ready_s']:>11.2f}{f['peak_mib']:>19,.0f}{f['batch_us']:>16.1f}   "
              f"ready {f['ready_s'] / ref['ready_s']:.3f}, memory {f['peak_mib'] / ref['peak_mib']:.3f}, "
              f"batch {f['batch_us'] / ref['batch_us']:.2f}")


if __name__ == "__main__":
    main()
