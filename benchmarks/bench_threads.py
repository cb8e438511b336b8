"""CPU threads on an idle and on a busy machine: makemore's choice against torch's default, in one run.

torch's default is a thread per core. makemore's is a thread per core that no other process keeps
busy (device.use_threads). Each model trains `--steps` steps with `makemore train`, once with
`--threads` set to torch's default and once with makemore's own choice, A-B, on an idle machine and
then with a busy process that this benchmark starts (a spin loop pinned to one CPU); the figure is
the run's own training speed (metrics.json, predicted characters per second).

    python benchmarks/bench_threads.py
    python benchmarks/bench_threads.py --models mlp lstm --steps 400 --rounds 3
"""
import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from bench_vs_makemore_py import spin  # the same busy process

STEPS = {"mlp": 1500, "lstm": 150, "transformer": 200}  # a few seconds each on 2 cores


def speed(model, data, steps, threads, tmp, name):
    """(characters/s, threads used) of a `makemore train` run; threads None: makemore's choice."""
    command = [sys.executable, "-m", "makemore", "train", "--model", model, "--data", data, "--max-steps", str(steps),
               "--eval-interval", str(steps), "--out-dir", str(tmp), "--name", name]
    command += ["--threads", str(threads)] if threads else []
    done = subprocess.run(command, check=False, capture_output=True, text=True, cwd=tmp)
    if done.returncode != 0:
        sys.exit(f"makemore failed: {' '.join(command)}\n{done.stderr[-2000:]}")
    used = re.search(r"device cpu \((\d+) thread", done.stdout).group(1)
    return json.loads((Path(tmp) / name / "metrics.json").read_text())["train_chars_per_s"], used


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="names", help="corpus, as for makemore train --data")
    parser.add_argument("--models", nargs="+", choices=list(STEPS), default=list(STEPS))
    parser.add_argument("--steps", type=int, help="steps per run  [default: a few seconds' worth per model]")
    parser.add_argument("--rounds", type=int, default=2, help="A-B rounds per comparison (median reported)")
    args = parser.parse_args()
    default = torch.get_num_threads()
    print(f"torch {torch.__version__}: {default} threads by default; data {args.data}; {args.rounds} rounds, medians")
    print("| model | machine | torch's default (threads) | makemore's choice (threads) | ratio |")
    print("|---|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for load in ("idle", "busy"):
            busy = spin(3600) if load == "busy" else None
            time.sleep(0.5 if busy else 0)
            try:
                for model in args.models:
                    theirs, ours, used = [], [], ""
                    for k in range(args.rounds):
                        steps = args.steps or STEPS[model]
                        theirs.append(speed(model, args.data, steps, default, tmp, f"{load}-{model}-{k}-default")[0])
                        chars, used = speed(model, args.data, steps, None, tmp, f"{load}-{model}-{k}-auto")
                        ours.append(chars)
                    a, b = statistics.median(theirs), statistics.median(ours)
                    print(f"| {model} | {load} | {a:,.0f} ({default}) | {b:,.0f} ({used}) | **{b / a:.2f}x** |",
                          flush=True)
            finally:
                if busy:
                    busy.kill()
                    busy.wait()


if __name__ == "__main__":
    main()
