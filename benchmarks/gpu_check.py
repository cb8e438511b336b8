"""Every check that needs a GPU, in one go, with one table at the end: the CUDA tests, each benchmark's
ratio against its baseline on the GPU, and a 5-minute LSTM run on tiny Shakespeare with its val loss.

    python benchmarks/gpu_check.py              # on a machine with a CUDA GPU: about 8 minutes
    python benchmarks/gpu_check.py --dry-run    # anywhere, on the CPU with tiny sizes: the plumbing only

It needs only what the README installs (`pip install -e ".[test]"`). Each step runs as its own process
with a time limit; a step that fails or times out is a row that says so, and the others still run.
The exit status is 1 if any step failed.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"


def steps(args, cuda, gpus):
    """(name, command, timeout in seconds, pattern of the figure in its output, what the figure is)."""
    py, dev, tiny = sys.executable, "cuda" if cuda else "cpu", args.dry_run
    size = lambda dry, real: dry if tiny else real  # the dry run's sizes, or the GPU's
    workers = size("2", "4")
    gpu_tests = [py, "-m", "pytest", "-q", "-m", "gpu", ROOT / "tests"]
    mlp = [py, BENCH / "bench_mlp_throughput.py", "--device", dev, "--data", args.words, "--steps", size("20", "3000"),
           "--repeats", size("1", "2")]
    lstm = [py, BENCH / "bench_lstm.py", "--device", dev, "--data", args.prose,
            *size(["--steps", "3", "--n-hidden", "32", "--samples", "2", "--length", "20"],
                  ["--steps", "50", "--n-hidden", "512", "--batch-size", "64"])]
    transformer = [py, BENCH / "bench_transformer.py", "--device", dev, "--data", args.words, "--steps",
                   size("3", "500")]
    sweep = [py, BENCH / "bench_sweep_parallel.py", "--device", dev, "--data", args.words, "--parallel", workers,
             "--max-steps", size("5", "1500"), "--lrs", *size(["0.01"], ["0.003", "0.01"])]
    ratio = r"ratio ours / reference:\s+([\d.]+x)"
    last_ratio = r":\s+([\d.]+x)\s*$"
    out = [
        ("gpu tests", gpu_tests, 240, r"(\d+ passed|\d+ skipped|no tests ran)[^\n]*", "pytest's summary"),
        ("mlp trainer / DataLoader loop", mlp, 120, ratio, "chars/s ratio"),
        ("lstm trainer / Python-stepped cell", lstm, 120, ratio, "chars/s ratio"),
        ("transformer trainer / makemore.py-style loop", transformer, 120, r"speed-up ours vs reference:\s+([\d.]+x)",
         "ms/step ratio"),
        (f"sweep --parallel {workers} / --parallel 1", sweep, size(60, 200), last_ratio, "wall-time ratio"),
    ]
    if gpus >= 2 or tiny:
        n = gpus if cuda else 2
        ddp = [py, BENCH / "bench_ddp.py", "--device", dev, "--data", args.words, "--nproc", str(n), "--steps",
               size("10", "2000"), "--batch-size", size("32", "1024")]
        out.append((f"ddp {n} {'GPUs' if cuda else 'CPU processes'} / 1", ddp, size(120, 240), last_ratio,
                    "chars/s ratio"))
    return out


def run_step(name, cmd, timeout, pattern):
    """(status, figure, seconds) of one step."""
    start = time.monotonic()
    try:
        proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                              check=False)
    except subprocess.TimeoutExpired:
        return "timed out", "-", time.monotonic() - start
    seconds = time.monotonic() - start
    found = re.search(pattern, proc.stdout, re.MULTILINE)
    if proc.returncode != 0 or not found:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ["no output"]
        return f"failed ({tail[0][:80]})", "-", seconds
    return "ok", found.group(1) if found.groups() else found.group(0), seconds


def lstm_run(args, cuda, folder):
    """A run of about args.minutes minutes: 200 steps to time a step, then as many steps as fill the time."""
    dev = "cuda" if cuda else "cpu"
    common = [sys.executable, "-m", "makemore", "train", "--model", "lstm", "--data", args.prose, "--device", dev,
              "--out-dir", str(folder)]
    sizes = ["--n-hidden", "32", "--seq-len", "32"] if args.dry_run else ["--n-hidden", "512", "--batch-size", "64",
                                                                          "--seq-len", "256"]
    probe_steps = 20 if args.dry_run else 200
    subprocess.run([*common, *sizes, "--name", "probe", "--max-steps", str(probe_steps), "--eval-interval",
                    str(probe_steps), "--val-frac", "0.01"], check=True, capture_output=True, timeout=300)
    per_step = json.loads((folder / "probe" / "metrics.json").read_text())["seconds"] / probe_steps
    budget = 2.0 if args.dry_run else args.minutes * 60
    max_steps = max(probe_steps, int(budget / per_step))
    start = time.monotonic()
    subprocess.run([*common, *sizes, "--name", "lstm", "--max-steps", str(max_steps), "--eval-interval",
                    str(max(1, max_steps // 5))], check=True, capture_output=True, timeout=budget * 2 + 300)
    metrics = json.loads((folder / "lstm" / "metrics.json").read_text())
    return metrics, max_steps, time.monotonic() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="on the CPU with tiny sizes: check the plumbing")
    parser.add_argument("--words", default="names", help="the line corpus of the benchmarks")
    parser.add_argument("--prose", default="shakespeare", help="the prose of the LSTM benchmark and run")
    parser.add_argument("--minutes", type=float, default=5.0, help="length of the LSTM run")
    args = parser.parse_args()
    import torch

    cuda = torch.cuda.is_available() and not args.dry_run
    if not cuda and not args.dry_run:
        sys.exit("no CUDA GPU is visible; run on a GPU machine, or pass --dry-run to check the plumbing on the CPU")
    gpus = torch.cuda.device_count() if cuda else 0
    device = torch.cuda.get_device_name(0) if cuda else "cpu (dry run)"
    print(f"gpu check on {device}, {gpus} GPU(s), torch {torch.__version__}", flush=True)
    rows = []
    for name, cmd, timeout, pattern, what in steps(args, cuda, gpus):
        status, figure, seconds = run_step(name, cmd, timeout, pattern)
        rows.append((name, figure, what, status, seconds))
        print(f"  {name}: {figure} ({status}, {seconds:.0f} s)", flush=True)
    if cuda and gpus < 2:
        rows.append(("ddp 2 GPUs / 1", "-", "chars/s ratio", "skipped (1 GPU)", 0.0))
    with tempfile.TemporaryDirectory() as tmp:
        try:
            metrics, max_steps, seconds = lstm_run(args, cuda, Path(tmp))
            rows.append((f"lstm on {args.prose}, {max_steps:,} steps", f"val {metrics['val_loss']:.4f}",
                         f"nats/char ({metrics['val_bpc']:.3f} bits)", "ok", seconds))
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError, KeyError) as e:
            rows.append((f"lstm on {args.prose}", "-", "val loss", f"failed ({type(e).__name__})", 0.0))
    print()
    print("| check | figure | of | status | seconds |")
    print("|---|---|---|---|---|")
    for name, figure, what, status, seconds in rows:
        print(f"| {name} | {figure} | {what} | {status} | {seconds:.0f} |")
    total = sum(r[4] for r in rows)
    print(f"\ntotal {total / 60:.1f} minutes")
    sys.exit(0 if all(r[3] == "ok" or r[3].startswith("skipped") for r in rows) else 1)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
