"""A makemore model on makemore.py's own split of names.txt, to set its loss beside makemore.py's.

makemore.py (github.com/karpathy/makemore; facts of that program, not its code) keeps every line,
duplicates too, seeds torch with 3407, draws torch.randperm over the lines and holds out the last
min(1000, 10%) of them as its test split; it keeps the weights with the best test loss. Its README
reports test loss near 1.92 for its transformer on names.txt. makemore's own split is different:
distinct names only, 80/10/10, so no name is in two splits. This script draws makemore.py's split,
trains a makemore model on it with val = test (makemore.py's protocol: the best checkpoint by test
loss), and prints the test loss on all test lines, on those that also occur in the train split, and
on those that do not. The run directory keeps the checkpoints, but its config.json names the file
only: `makemore eval` or `sample --unique` on it read makemore's own split, not this one.

    python benchmarks/makemore_py_split.py ../shared/data/names.txt --out-dir runs/makemore-py-split
    python benchmarks/makemore_py_split.py ../shared/data/names.txt --model mlp --max-steps 30000

makemore.py's own training configuration for its transformer (batch 32, AdamW at a constant 5e-4,
weight decay 0.01, no dropout); makemore.py trains until it is stopped, this run stops when the
test loss has not improved for 3 validations:

    python benchmarks/makemore_py_split.py ../shared/data/names.txt --batch-size 32 --lr 5e-4 \
        --weight-decay 0.01 --dropout 0 --warmup-steps 0 --min-lr-frac 1 --max-steps 100000 --patience 3
"""
import argparse
import dataclasses
from pathlib import Path

import torch

from makemore.config import DataConfig, TrainConfig
from makemore.data import LineBatches
from makemore.device import pick_device
from makemore.evaluate import evaluate
from makemore.models import MODELS, model_config
from makemore.runs import Run
from makemore.tokenizer import CharTokenizer
from makemore.trainer import Trainer

TRAIN_OPTIONS = ("max_steps", "batch_size", "lr", "weight_decay", "warmup_steps", "min_lr_frac", "patience")


def makemore_py_split(path, seed=3407):
    """(train, test) lines as makemore.py draws them: its seed, then one randperm over all lines."""
    lines = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()]
    lines = [line for line in lines if line]
    n_test = min(1000, int(len(lines) * 0.1))
    torch.manual_seed(seed)
    order = torch.randperm(len(lines)).tolist()
    return [lines[i] for i in order[:-n_test]], [lines[i] for i in order[-n_test:]]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="names.txt, e.g. ../shared/data/names.txt")
    parser.add_argument("--model", default="transformer", choices=sorted(MODELS))
    parser.add_argument("--out-dir", default="runs/makemore-py-split")
    train_fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    for name in TRAIN_OPTIONS:
        parser.add_argument("--" + name.replace("_", "-"), type=train_fields[name].type,
                            help=f"{train_fields[name].metadata['help']} (default: the model's own)")
    parser.add_argument("--dropout", type=float, help="the model's dropout, where it has one (default: its own)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    train, test = makemore_py_split(args.data)
    seen = set(train)
    test_seen = [line for line in test if line in seen]
    print(f"makemore.py's split of {args.data}: {len(train):,} train lines ({len(seen):,} distinct), "
          f"{len(test):,} test lines, {len(test_seen)} of them also in train")

    device = pick_device(args.device)
    tokenizer = CharTokenizer.from_text(train + test)
    given = {name: getattr(args, name) for name in (*TRAIN_OPTIONS, "dropout") if getattr(args, name) is not None}
    cfg = model_config(args.model, vocab_size=tokenizer.vocab_size,
                       **{k: v for k, v in given.items() if k == "dropout"})
    overrides = {"device": str(device)} | {k: v for k, v in given.items() if k in TRAIN_OPTIONS}
    train_cfg = TrainConfig(**{**MODELS[args.model].train_defaults(cfg), **overrides})
    run = Run.create(Path(args.out_dir) / args.model, args.model, cfg, DataConfig(data=args.data), train_cfg, tokenizer)
    torch.manual_seed(train_cfg.seed)
    model = run.build_model().to(device)
    batches = {name: LineBatches(items, tokenizer, device) for name, items in (("train", train), ("val", test))}
    model.prepare(batches["train"])
    trainer = Trainer(model, batches, train_cfg, run.path, device)
    trainer.train()

    best, _ = run.load_model("best", device)
    print(f"{args.model}, {sum(p.numel() for p in best.parameters()):,} parameters, {trainer.step:,} steps, "
          f"{trainer.seconds:.0f} s; best checkpoint (step {trainer.best_step:,}), test loss in nats per character:")
    for name, items in (("all test lines", test), ("also in train", test_seen),
                        ("not in train", [line for line in test if line not in seen])):
        if not items:  # e.g. no test line is also in train: a file without repeats
            print(f"  {name:<15}     0 lines  -")
            continue
        loss = evaluate(best, LineBatches(items, tokenizer, device), train_cfg.eval_batch_size, train_cfg.precision)
        print(f"  {name:<15} {len(items):>5,} lines  {loss:.4f}")


if __name__ == "__main__":
    main()
