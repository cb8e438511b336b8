"""Sweep wall time: the same trials with --parallel N against --parallel 1, in one run.

A grid sampler without pruning makes both sweeps run exactly the same trials, with the same
step budget each, so the ratio of wall times is what the extra workers buy.

    python benchmarks/bench_sweep_parallel.py                           # CPU: 2 workers vs 1
    python benchmarks/bench_sweep_parallel.py --parallel 4 --device cuda --max-steps 5000
"""
import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def sweep_seconds(out_dir, name, parallel, args):
    command = [sys.executable, "-m", "makemore", "sweep", "--name", name, "--out-dir", str(out_dir),
               "--sampler", "grid", "--pruner", "none", "--parallel", str(parallel),
               "--param", "lr=" + ",".join(f"{lr:g}" for lr in args.lrs),
               "--param", "n_hidden=128,256",
               "--max-steps", str(args.max_steps), "--eval-interval", str(args.max_steps),
               "--data", args.data, "--device", args.device]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--max-steps", type=int, default=2000)
    parser.add_argument("--data", default="names")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--lrs", type=float, nargs="+", default=[3e-3, 1e-2])
    args = parser.parse_args()
    trials = 2 * len(args.lrs)
    with tempfile.TemporaryDirectory() as tmp:
        serial = sweep_seconds(Path(tmp), "serial", 1, args)
        parallel = sweep_seconds(Path(tmp), "parallel", args.parallel, args)
    print(f"{trials} trials of {args.max_steps} steps on {args.device}: --parallel 1 {serial:.1f} s, "
          f"--parallel {args.parallel} {parallel:.1f} s: {serial / parallel:.2f}x")


if __name__ == "__main__":
    main()
