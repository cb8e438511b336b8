"""Training speed against makemore.py (github.com/karpathy/makemore), at makemore.py's own configuration.

This benchmark fetches nothing and reimplements nothing of makemore.py: it runs the makemore.py you
give it (--makemore-py PATH) and `makemore train`, one after the other (A-B-A-B), at the same sizes
and batch, on the same names file, and prints predicted characters per second for each. A character
is predicted when it counts in the loss: a name's letters and its end, never padding.

makemore.py's configuration, from its argparse defaults: batch 32, 64-wide embeddings and hidden
layers (n_embd, n_embd2), 4 layers and 4 heads in the transformer, a block of the longest name + 1
(16 on names.txt), AdamW at 5e-4 with weight decay 0.01, 4 DataLoader workers. makemore.py is timed
by the wall clock between its "step N" lines (started with python -u), leaving out the first 20
steps and the steps that sample (every 200th); makemore by its own train_chars_per_s (metrics.json:
training time only, warm-up steps included).

Each comparison runs on an idle machine, then with a busy process that the benchmark starts
itself: a spin loop pinned to one CPU, bounded in time and stopped at the end.

    python benchmarks/bench_vs_makemore_py.py --makemore-py ~/src/makemore/makemore.py
    python benchmarks/bench_vs_makemore_py.py --makemore-py makemore.py --models mlp --load busy --rounds 3
"""
import argparse
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BATCH = 32
WIDTH = 64
SAMPLES_EVERY = 200  # makemore.py samples after each 200th step: those steps are not timed
# makemore's options at makemore.py's configuration, for each model makemore.py has (block: --block-size)
OURS = {
    "mlp": "--model mlp --block-size {block} --n-embd 64 --n-hidden 64 --n-layer 1 --dropout 0",
    "transformer": "--model transformer --block-size {block} --n-embd 64 --n-layer 4 --n-head 4 --dropout 0",
    "gru": "--model gru --n-embd 64 --n-hidden 64 --n-layer 1 --dropout 0",
}
STEP = re.compile(r"^step (\d+) \|")


def their_speed(makemore_py, data, model, steps, chars_per_item, tmp):
    """makemore.py's predicted characters per second: steps between its step lines, by the wall clock."""
    command = [sys.executable, "-u", str(makemore_py), "--input-file", str(data), "--work-dir", str(tmp),
               "--type", model, "--max-steps", str(steps)]
    seen = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp) as proc:
        for line in proc.stdout:
            if m := STEP.match(line):
                seen.append((int(m.group(1)), time.perf_counter()))
    if proc.returncode != 0 or len(seen) < 3:
        sys.exit(f"makemore.py failed (exit {proc.returncode}): {' '.join(command)}")
    timed = [(b[0] - a[0], b[1] - a[1]) for a, b in itertools.pairwise(seen) if a[0] >= 20 and a[0] % SAMPLES_EVERY]
    return sum(n for n, _ in timed) * BATCH * chars_per_item / sum(t for _, t in timed)


def our_speed(data, model, steps, block, tmp, name):
    """makemore's predicted characters per second, as its run records them, and the threads it chose."""
    options = OURS[model].format(block=block).split()
    command = [sys.executable, "-m", "makemore", "train", *options, "--data", str(data), "--batch-size",
               str(BATCH), "--lr", "5e-4", "--weight-decay", "0.01", "--max-steps", str(steps), "--eval-interval",
               str(steps), "--out-dir", str(tmp), "--name", name]
    # in a folder of its own: a makemore.py in the working folder would stand in for the package
    done = subprocess.run(command, check=False, capture_output=True, text=True, cwd=tmp)
    if done.returncode != 0:
        sys.exit(f"makemore failed (exit {done.returncode}): {' '.join(command)}\n{done.stderr[-2000:]}")
    threads = re.search(r"device cpu \((\d+) thread", done.stdout)
    metrics = json.loads((Path(tmp) / name / "metrics.json").read_text())
    return metrics["train_chars_per_s"], threads.group(1) if threads else "?"


def spin(seconds):
    """A busy process on one CPU (the last this process may use), stopped after `seconds` at most."""
    cpu = max(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    pin = f"os.sched_setaffinity(0, {{{cpu}}})\n" if cpu is not None else ""
    code = f"import os, time\n{pin}end = time.time() + {seconds}\nwhile time.time() < end: pass\n"
    return subprocess.Popen([sys.executable, "-c", code])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--makemore-py", type=Path, help="path of a makemore.py from github.com/karpathy/makemore")
    default_data = Path(os.environ.get("MAKEMORE_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=default_data / "names.txt", help="a file of names, one a line")
    parser.add_argument("--models", nargs="+", choices=list(OURS), default=list(OURS))
    parser.add_argument("--load", nargs="+", choices=["idle", "busy"], default=["idle", "busy"])
    parser.add_argument("--rounds", type=int, default=2, help="A-B rounds per comparison (median reported)")
    parser.add_argument("--their-steps", type=int, default=400, help="makemore.py steps per run")
    parser.add_argument("--our-steps", type=int, default=1500, help="makemore steps per run")
    args = parser.parse_args()
    if args.makemore_py is None or not args.makemore_py.is_file():
        print(f"skipped: no makemore.py at {args.makemore_py or '(none given)'}; this benchmark fetches nothing: "
              "pass --makemore-py PATH to a copy of makemore.py from github.com/karpathy/makemore")
        return
    if not args.data.is_file():
        sys.exit(f"no names file at {args.data}; pass --data PATH")

    words = [w.strip() for w in args.data.read_text(encoding="utf-8").splitlines() if w.strip()]
    block = max(len(w) for w in words) + 1  # makemore.py's block: <START> and the longest word
    chars_per_item = sum(len(w) + 1 for w in words) / len(words)  # its batches draw words uniformly
    print(f"{args.data}: {len(words):,} words, block {block}, {chars_per_item:.2f} predicted characters a word; "
          f"{os.cpu_count()} CPUs; batch {BATCH}, width {WIDTH}; {args.rounds} A-B rounds, medians")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for load in args.load:
            busy = spin(3600) if load == "busy" else None
            time.sleep(0.5 if busy else 0)
            try:
                for model in args.models:
                    theirs, ours, threads = [], [], []
                    for k in range(args.rounds):
                        where = Path(tmp) / f"{load}-{model}-{k}"
                        where.mkdir()
                        theirs.append(their_speed(args.makemore_py.resolve(), args.data.resolve(), model,
                                                  args.their_steps, chars_per_item, where))
                        speed, n = our_speed(args.data.resolve(), model, args.our_steps, block, where, "ours")
                        ours.append(speed)
                        threads.append(n)
                    rows.append((model, load, statistics.median(theirs), statistics.median(ours), "/".join(threads)))
                    print(f"  {model:12s} {load:5s} makemore.py {rows[-1][2]:>9,.0f}  makemore {rows[-1][3]:>9,.0f} "
                          f"chars/s  ({rows[-1][3] / rows[-1][2]:.2f}x)", flush=True)
            finally:
                if busy:
                    busy.kill()
                    busy.wait()
    print()
    print("| model | machine | makemore.py chars/s | makemore chars/s (threads) | makemore / makemore.py |")
    print("|---|---|---:|---:|---:|")
    for model, load, theirs, ours, threads in rows:
        print(f"| {model} | {load} | {theirs:,.0f} | {ours:,.0f} ({threads}) | **{ours / theirs:.2f}x** |")
    idle = {m: o for m, load, _, o, _ in rows if load == "idle"}
    for model, load, _, ours, _ in rows:
        if load == "busy" and model in idle:
            print(f"{model}: makemore on the busy machine at {ours / idle[model]:.2f}x its idle speed")


if __name__ == "__main__":
    main()
