"""A classifier's costs on labeled text, each against the way makemore did it before, in the same run.

1. Training items/s: batches drawn from length buckets (short items do not pay for the padding of
   long ones) against batches drawn from all items; same model, same steps.
2. One validation: scoring a fixed sample of the train split (tasks.TRAIN_SAMPLE items) and the val
   split, read longest first within a budget of characters, against scoring the whole train split
   and the val split in the split's order (what every validation did before).
3. classify of one long item (--long-chars characters, read in pieces of --max-item-len): seconds
   and the process's peak memory, measured in a fresh process.

    python benchmarks/bench_classifier.py                         # the shipped WordNet definitions
    python benchmarks/bench_classifier.py --data nouns.tsv --steps 200
"""
import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from makemore.config import DataConfig
from makemore.data import LabeledBatches, load_corpus
from makemore.evaluate import log_probs, split_scores
from makemore.models import build_model, model_config
from makemore.tasks import TRAIN_SAMPLE
from makemore.tokenizer import CharTokenizer


class WholeSplit(LabeledBatches):
    """The batching before: rows in the split's order, eval_batch_size at a time, however long."""

    def index(self):
        super().index()
        self.longest_first = torch.arange(len(self.lengths))  # read in order, so merged() keeps the order

    def iter_all(self, batch_size):
        for start in range(0, len(self.lengths), batch_size):
            yield self._rows(torch.arange(start, min(start + batch_size, len(self.lengths))))


def train_items_per_s(model, batches, steps, batch_size):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    model.train()
    start = time.perf_counter()
    for _ in range(steps):
        x, y = batches.sample(batch_size, g)
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return steps * batch_size / (time.perf_counter() - start)


def timed(f):
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


CLASSIFY = """
import json, resource, sys, time, torch
from makemore.evaluate import item_log_probs
from makemore.models import build_model, model_config
from makemore.tokenizer import CharTokenizer
meta = json.loads(open(sys.argv[1] + ".json").read())
model = build_model("classifier", model_config("classifier", **meta["config"]))
model.load_state_dict(torch.load(sys.argv[1], weights_only=True))
tok, n = CharTokenizer.from_json(meta["tokenizer"]), meta["chars"]
item = ("".join(tok.chars) * (n // len(tok.chars) + 1))[:n]  # characters the classifier knows
start = time.perf_counter()
logp = item_log_probs(model.eval(), tok, [item], meta["max_item_len"])
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="glosses", help="labeled data, as for train --data")
    parser.add_argument("--steps", type=int, default=100, help="training steps timed each way")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--eval-batch-size", type=int, default=1024)
    parser.add_argument("--n-hidden", type=int, default=256)
    parser.add_argument("--n-layer", type=int, default=1)
    parser.add_argument("--max-item-len", type=int, default=1000)
    parser.add_argument("--long-chars", type=int, default=2_000_000, help="length of the item classify reads")
    args = parser.parse_args()
    torch.manual_seed(0)

    corpus = load_corpus(DataConfig(data=args.data), log=print, labeled=True)
    tok = CharTokenizer(corpus.chars())
    cfg = model_config("classifier", encoder="lstm", n_hidden=args.n_hidden, n_layer=args.n_layer,
                       labels=corpus.labels, vocab_size=tok.vocab_size)
    model = build_model("classifier", cfg)
    lengths = sorted(len(item) for item, _ in corpus.train)
    print(f"{args.data}: {len(corpus.train):,} train / {len(corpus.val):,} val items, {len(corpus.labels)} labels; "
          f"item length median {lengths[len(lengths) // 2]}, 99th percentile {lengths[len(lengths) * 99 // 100]}, "
          f"longest {lengths[-1]}; lstm {args.n_layer} x {args.n_hidden}")

    def batches(pairs, cls=LabeledBatches, **kw):
        return cls(pairs, tok, "cpu", max_len=args.max_item_len, **kw)

    bucketed, flat = batches(corpus.train), batches(corpus.train, buckets=1)
    train_items_per_s(model, bucketed, 3, args.batch_size)  # warm-up
    ours = train_items_per_s(model, bucketed, args.steps, args.batch_size)
    before = train_items_per_s(model, flat, args.steps, args.batch_size)
    print(f"training items/s: length buckets {ours:,.0f}, all items {before:,.0f}: ratio {ours / before:.2f}x")

    val = batches(corpus.val, pieces=True)
    sample = bucketed.sampled(TRAIN_SAMPLE)
    whole_train, whole_val = batches(corpus.train, WholeSplit), batches(corpus.val, WholeSplit, pieces=True)
    now = timed(lambda: [split_scores(model, split, args.eval_batch_size) for split in (sample, val)])
    then = timed(lambda: [split_scores(model, split, args.eval_batch_size) for split in (whole_train, whole_val)])
    print(f"one validation: {now:.1f} s ({len(sample):,} train items sampled + {len(val):,} val), before {then:.1f} s "
          f"(the whole train split + val): ratio {then / now:.1f}x")
    same = torch.equal(log_probs(model, val, args.eval_batch_size)[0].argmax(-1),
                       log_probs(model, whole_val, args.eval_batch_size)[0].argmax(-1))
    print(f"val predictions the same either way: {same}")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.pt"
        torch.save(model.state_dict(), path)
        meta = {"config": dataclasses.asdict(cfg), "tokenizer": tok.to_json(), "chars": args.long_chars,
                "max_item_len": args.max_item_len}
        Path(f"{path}.json").write_text(json.dumps(meta))
        out = subprocess.run([sys.executable, "-c", CLASSIFY, str(path)], capture_output=True, text=True, check=False)
        if out.returncode:
            raise SystemExit(out.stderr)
        seconds, peak_mb = out.stdout.split()
    print(f"classify one item of {args.long_chars:,} characters (pieces of {args.max_item_len:,}): "
          f"{float(seconds):.1f} s, "
          f"peak memory {float(peak_mb):,.0f} MB")


if __name__ == "__main__":
    main()
