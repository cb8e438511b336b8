"""Every benchmark still runs: each, with a few steps, prints its figures and exits 0. Their speed
is not checked here (that is what they measure); this only keeps them from rotting unseen."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


CASES = {  # benchmark: (its arguments for a quick run, {words} and {prose} the fixtures' files; what its output holds)
    "bench_mlp_throughput.py": ("--data {words} --steps 20 --repeats 1", ("ratio ours / reference",)),
    "bench_classifier.py": ("--data {labeled} --steps 3 --n-hidden 16 --long-chars 20000 --max-item-len 100",
                            ("training items/s", "one validation", "classify one item of 20,000")),
    "bench_lstm.py": ("--data {prose} --steps 3 --n-hidden 32 --samples 2 --length 20", ("ratio carried / re-run",)),
    "bench_transformer.py": (("--data {words} --steps 3 --ema 0.99 --input-noise 0.1 --samples 2 --length 20 "
                             "--sample-block 16"), ("--ema 0.99:", "--input-noise 0.1:", "the time without",
                                                   "ratio cached / re-read")),
    "bench_stream_data.py": ("--data {prose} --mb 0.2 --draws 5 --hf", ("ratios to the reference", "mapped, first")),
    "bench_sweep_parallel.py": ("--data {words} --max-steps 5 --lrs 0.01 --device cpu", ("--parallel 2",)),
    "makemore_py_split.py": ("{words} --max-steps 5 --out-dir runs --device cpu", ("not in train",)),
    "bench_ddp.py": ("--data {words} --steps 10 --batch-size 32 --device cpu", ("2 processes", "x")),
    "gpu_check.py": ("--dry-run --words {words} --prose {prose}", ("| gpu tests |", "| ddp 2 CPU processes / 1 |",
                                                                   "| lstm on ", "| ok |")),
    "bench_threads.py": ("--data {words} --models mlp --steps 20 --rounds 1", ("| mlp | idle |", "| mlp | busy |")),
    "bench_vs_makemore_py.py": ("--makemore-py {makemore_py} --data {words} --models mlp --rounds 1 --our-steps 20 "
                                + "--their-steps 60", ("| mlp | idle |", "| mlp | busy |", "its idle speed")),
}
# A stand-in for makemore.py, which this project does not hold: it takes makemore.py's options and prints
# its "step N | loss ..." lines, so the benchmark's plumbing runs here; the benchmark itself times the real one.
STAND_IN = """
import argparse, os, time
parser = argparse.ArgumentParser()
for option in ("--input-file", "--work-dir", "--type"):
    parser.add_argument(option)
parser.add_argument("--max-steps", type=int)
args = parser.parse_args()
for step in range(args.max_steps):
    time.sleep(0.002)
    if step % 10 == 0:
        print(f"step {step} | loss 2.0000 | step time 2.00ms")
"""


def test_every_benchmark_has_a_case():
    assert sorted(CASES) == sorted(p.name for p in BENCHMARKS.glob("*.py"))


@pytest.mark.parametrize("script", sorted(CASES))
def test_benchmark_runs(script, tmp_path, words_file, prose_file, labeled_folder):
    args, expected = CASES[script]
    stand_in = tmp_path / "karpathy" / "makemore.py"  # not in the working folder, where it would hide the package
    stand_in.parent.mkdir()
    stand_in.write_text(STAND_IN)
    args = [arg.format(words=words_file, prose=prose_file, labeled=labeled_folder, makemore_py=stand_in)
            for arg in args.split()]
    result = subprocess.run([sys.executable, BENCHMARKS / script, *args], check=False, cwd=tmp_path,
                            capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert all(line in result.stdout for line in expected), result.stdout
