"""Every benchmark still runs: each, with a few steps, prints its figures and exits 0. Their speed
is not checked here (that is what they measure); this only keeps them from rotting unseen."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def names_file(tmp_path):
    path = tmp_path / "names.txt"
    path.write_text("\n".join(f"{a}{b}{c}" for a in "abcdefg" for b in "aeiou" for c in "lmnrst") + "\n", encoding="utf-8")
    return path


def prose_file(tmp_path):
    path = tmp_path / "prose.txt"
    path.write_text("To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n" * 60,
                    encoding="utf-8")
    return path


CASES = {  # benchmark: (its arguments for a quick run, a line its output must hold)
    "bench_mlp_throughput.py": (lambda tmp: ["--data", names_file(tmp), "--steps", 20, "--repeats", 1], "ratio ours / reference"),
    "bench_lstm.py": (lambda tmp: ["--data", prose_file(tmp), "--steps", 3, "--n-hidden", 32, "--samples", 2,
                                   "--length", 20], "ratio carried / re-run"),
    "bench_transformer.py": (lambda tmp: ["--data", names_file(tmp), "--steps", 3], "speed-up ours vs reference"),
    "bench_sweep_parallel.py": (lambda tmp: ["--data", names_file(tmp), "--max-steps", 5, "--lrs", 0.01,
                                             "--device", "cpu"], "--parallel 2"),
    "makemore_py_split.py": (lambda tmp: [names_file(tmp), "--max-steps", 5, "--out-dir", tmp / "runs",
                                          "--device", "cpu"], "not in train"),
}


def test_every_benchmark_has_a_case():
    assert sorted(CASES) == sorted(p.name for p in BENCHMARKS.glob("*.py"))


@pytest.mark.parametrize("script", sorted(CASES))
def test_benchmark_runs(script, tmp_path):
    args, expected = CASES[script]
    result = subprocess.run([sys.executable, BENCHMARKS / script, *map(str, args(tmp_path))], check=False, cwd=tmp_path,
                            capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert expected in result.stdout, result.stdout
