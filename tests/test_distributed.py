"""Training on several processes: torchrun and --nproc start real processes that join a gloo group on the
CPU; their figures must equal one process's, an interrupted run must resume with another number of processes,
and rank 0 alone writes."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from makemore.cli import cli

HELPERS = Path(__file__).parent / "helpers"
# dropout off: each process draws its own masks, so with dropout the figures differ by chance
SMALL = ["--max-steps", "50", "--eval-interval", "25", "--log-interval", "5", "--batch-size", "16", "--dropout", "0",
         "--device", "cpu"]


@pytest.fixture
def names(tmp_path):
    path = tmp_path / "names.txt"
    path.write_text("\n".join((Path(__file__).parent.parent / "data" / "names.txt").read_text().split()[:2000]) + "\n")
    return path


@pytest.fixture
def prose(tmp_path):
    words = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "seven", "bold", "wizards", "hum"]
    lines = [" ".join(words[(i * 7 + j) % len(words)] for j in range(9)) + "." for i in range(700)]
    path = tmp_path / "prose.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def makemore(*args, cwd, nproc=None, script=None, env=None, check=True):
    """Run makemore (or a helper script that runs it) in new processes, under torchrun --nproc_per_node nproc if
    given; the finished process."""
    start = [sys.executable, *(["-m", "torch.distributed.run", "--nproc_per_node", str(nproc)] if nproc else [])]
    target = [str(script)] if script else ["-m", "makemore"]
    proc = subprocess.run([*start, *target, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "MAKEMORE_THREADS": "1", **(env or {})}, check=False)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def figures(run):
    metrics = json.loads((run / "metrics.json").read_text())
    return {k: v for k, v in metrics.items() if k.endswith("_loss")}


def close(a, b, tol=1e-4):
    return a.keys() == b.keys() and all(abs(a[k] - b[k]) <= tol for k in a)


def test_two_torchrun_processes_train_as_one_process_does_and_rank_0_alone_writes(tmp_path, names):
    args = ["train", "--data", names, "--model", "transformer", "--n-embd", "32", *SMALL]
    one = makemore(*args, "--name", "one", cwd=tmp_path)
    two = makemore(*args, "--name", "two", cwd=tmp_path, nproc=2)
    assert "x 2 processes" in two.stdout
    steps = lambda out: [line for line in out.splitlines() if line.startswith("step")]
    assert len(steps(two.stdout)) == 2 and steps(two.stdout) == steps(one.stdout)  # train and val, to 4 decimals
    assert close(figures(tmp_path / "runs" / "one"), figures(tmp_path / "runs" / "two"))
    # rank 0 alone wrote: one process's TensorBoard files, and nothing besides the runs
    writers = {p.name.split(".")[-2] for p in (tmp_path / "runs" / "two").glob("events.out.tfevents.*")}
    assert len(writers) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["names.txt", "runs"]
    assert json.loads((tmp_path / "runs" / "two" / "metrics.json").read_text())["processes"] == 2


@pytest.mark.parametrize("case", ["mlp on names, 2 processes then 1",
                                  "lstm carrying its state on prose, 2 processes then 3"])
def test_a_run_interrupted_on_one_process_resumes_with_another_count_where_an_uninterrupted_run_ends(
        tmp_path, names, prose, case):
    if case.startswith("mlp"):
        args, later = ["train", "--data", names, "--model", "mlp", *SMALL], 1
    else:
        args, later = ["train", "--data", prose, "--kind", "stream", "--model", "lstm", "--n-hidden", "32",
                       "--carry-state", "true", "--seq-len", "16", *SMALL], 3
    makemore(*args, "--name", "whole", cwd=tmp_path)
    # rank 1 alone gets the signal at step 30; both stop at the next report (step 35) and save
    cut = makemore(*args, "--name", "cut", cwd=tmp_path, nproc=2, script=HELPERS / "stop_at_step.py",
                   env={"STOP_AT": "30", "STOP_RANK": "1"}, check=False)
    assert cut.returncode != 0  # torchrun passes on the processes' 130
    assert "interrupted at step 35; last.pt is saved" in cut.stdout
    assert not (tmp_path / "runs" / "cut" / "metrics.json").exists()
    makemore("train", "--resume", "--name", "cut", cwd=tmp_path, nproc=later if later > 1 else None)
    assert close(figures(tmp_path / "runs" / "whole"), figures(tmp_path / "runs" / "cut"))


def test_every_model_and_one_of_the_users_own_trains_on_two_processes_through_the_library(tmp_path, names):
    labeled = tmp_path / "labeled.tsv"
    labeled.write_text("".join((Path(__file__).parent.parent / "data" / "names_sex.tsv").read_text()
                               .splitlines(keepends=True)[:2000]))
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           str(HELPERS / "train_zoo.py"), "zoo", names, labeled], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "MAKEMORE_THREADS": "1"}, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    trained = dict(line.split() for line in proc.stdout.splitlines())
    assert set(trained) == {"bigram", "bigram-gradient", "mlp-batchnorm", "mlp-ema", "wavenet", "lstm", "gru", "rnn",
                            "transformer", "classifier", "own", "lm", "finetuned"}
    assert float(trained["classifier"]) < 0.69  # below chance (ln 2) for two labels


def long_run_on_two_processes(tmp_path, names):
    """`makemore train --nproc 2` of a long run in the background, once it has saved last.pt: (process, last.pt)."""
    args = [sys.executable, "-m", "makemore", "train", "--data", str(names), "--model", "mlp", "--nproc", "2",
            "--max-steps", "100000", "--eval-interval", "20", "--log-interval", "5", "--name", "long", "--device",
            "cpu"]
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "MAKEMORE_THREADS": "1"})
    last = tmp_path / "runs" / "long" / "last.pt"
    deadline = time.monotonic() + 120
    while not last.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    return proc, last


def test_nproc_trains_in_several_processes_and_sigterm_stops_them_all_at_one_step(tmp_path, names):
    proc, last = long_run_on_two_processes(tmp_path, names)
    proc.send_signal(signal.SIGTERM)  # to the launcher, which passes it on to each process once
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "x 2 processes" in out and "interrupted at step" in out and "Traceback" not in err
    step = int(out.split("interrupted at step ")[1].split(";")[0])
    from makemore.checkpoint import load_checkpoint

    ckpt = load_checkpoint(last)
    assert ckpt["step"] == step and len(ckpt["processes"]) == 2
    runner = CliRunner()
    result = runner.invoke(cli, ["train", "--resume", "--name", "long", "--out-dir", str(tmp_path / "runs"),
                                 "--max-steps", str(step + 10)])
    assert result.exit_code == 0, result.output
    assert f"resumed {tmp_path / 'runs' / 'long'} at step {step:,}" in result.output


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds the processes through Linux's /proc")
def test_when_one_process_dies_the_others_stop_in_one_line_and_the_checkpoint_stays(tmp_path, names):
    proc, last = long_run_on_two_processes(tmp_path, names)
    ranks = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    assert len(ranks) == 2
    os.kill(int(ranks[1]), signal.SIGKILL)  # rank 1 dies; rank 0 waits for it at the next all-reduce
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: another process of this run stopped"), err
    from makemore.checkpoint import load_checkpoint

    assert load_checkpoint(last)["step"] >= 20  # the last good checkpoint, whole


def test_what_several_processes_cannot_do_is_one_line(tmp_path, names, monkeypatch):
    proc = makemore("train", "--data", names, "--nproc", "2", "--batch-size", "1", "--max-steps", "5", cwd=tmp_path,
                    check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: --batch-size 1 is split over 2 processes, fewer rows than processes; pass "
                                   "--batch-size 2 or more")
    runner = CliRunner()
    result = runner.invoke(cli, ["train", "--data", str(names), "--nproc", "100000", "--out-dir", str(tmp_path / "r")])
    assert result.exit_code == 2 and "--nproc 100000 is more processes than the" in result.output
    monkeypatch.setenv("WORLD_SIZE", "2")
    result = runner.invoke(cli, ["sample", "--run", str(tmp_path / "runs" / "x")])
    assert result.exit_code == 2
    assert result.output.strip() == ("error: makemore sample runs in one process; torchrun (or --nproc) starts train "
                                     "or finetune")
    monkeypatch.delenv("RANK", raising=False)
    result = runner.invoke(cli, ["train", "--data", str(names), "--max-steps", "5", "--out-dir", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert result.output.strip().startswith("error: WORLD_SIZE is set but RANK is not; start makemore with torchrun")
    assert not (tmp_path / "r").exists()
