"""Data-parallel training: the same run on N processes (`makemore train --nproc N`) against 1, in one run.

Both train the same model for the same steps on the same global batch (each of the N processes takes
1/N of its rows), so they compute the same figures; the ratio of their training characters per second
(metrics.json's train_chars_per_s, start-up left out) is what the extra processes buy. On CUDA each process
has its own GPU; on a CPU the N processes share its cores, each with its share of the threads.

    python benchmarks/bench_ddp.py                                   # CPU: 2 processes vs 1
    python benchmarks/bench_ddp.py --device cuda --nproc 2 --steps 3000 --batch-size 512
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def speed(folder, name, nproc, args):
    """Training characters per second and the val loss of one run on nproc processes."""
    cmd = [sys.executable, "-m", "makemore", "train", "--model", args.model, "--data", args.data, "--name", name,
           "--out-dir", str(folder), "--max-steps", str(args.steps), "--eval-interval", str(args.steps),
           "--batch-size", str(args.batch_size), "--device", args.device, "--nproc", str(nproc)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    metrics = json.loads((folder / name / "metrics.json").read_text())
    return metrics["train_chars_per_s"], metrics["val_loss"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--model", default="transformer")
    parser.add_argument("--data", default="names")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        one, val_one = speed(Path(tmp), "one", 1, args)
        many, val_many = speed(Path(tmp), "many", args.nproc, args)
    print(f"{args.model}, {args.steps} steps of {args.batch_size} on {args.device}: 1 process {one:,.0f} chars/s "
          f"(val {val_one:.4f}), {args.nproc} processes {many:,.0f} chars/s (val {val_many:.4f}): {many / one:.2f}x")


if __name__ == "__main__":
    main()
