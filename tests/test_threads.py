"""CPU threads: one per core that no other process keeps busy, unless --threads or the environment says."""
import os
import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner

from makemore import device
from makemore.cli import cli
from tests.conftest import tiny_args


@pytest.fixture(autouse=True)
def torch_threads(monkeypatch):
    """Each test starts with no thread setting in the environment and no earlier automatic choice, and
    leaves torch's thread count as it found it."""
    before = torch.get_num_threads()
    saved = {name: os.environ.pop(name, None) for name in ("MAKEMORE_THREADS", "OMP_NUM_THREADS")}
    monkeypatch.setattr(device, "_chosen", None)
    yield
    for name, value in saved.items():  # --threads sets the variable for the rest of the process
        os.environ.pop(name, None)
        if value is not None:
            os.environ[name] = value
    torch.set_num_threads(before)


def spinner(cpu, seconds=20):
    """A process that keeps one CPU busy (bounded in time, in case the test dies)."""
    code = (f"import os, time\nos.sched_setaffinity(0, {{{cpu}}})\nend = time.time() + {seconds}\n"
            "while time.time() < end: pass\n")
    return subprocess.Popen([sys.executable, "-c", code])


def test_the_environment_sets_the_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert device.use_threads() == 2
    monkeypatch.setenv("MAKEMORE_THREADS", "1")  # makemore's own setting comes first
    assert device.use_threads() == 1
    assert torch.get_num_threads() == 1
    assert device.use_threads(2) == 2  # an explicit count beats both


def test_more_threads_than_cpus_is_refused_in_one_line(monkeypatch, tmp_path):
    from conftest import assert_user_error, run

    from makemore.config import usable_cpus

    cpus = usable_cpus()
    args = ["train", *tiny_args(max_steps=5), "--data", "names", "--out-dir", tmp_path]
    assert_user_error(run(*args, "--threads", 10_000), f"--threads 10000 is more threads than the {cpus} CPU(s)",
                      f"pass {cpus} or fewer")
    monkeypatch.setenv("MAKEMORE_THREADS", "1000000")
    assert_user_error(run(*args), f"MAKEMORE_THREADS=1000000 is more threads than the {cpus} CPU(s)")
    assert not (tmp_path / "mlp-names").exists()
    monkeypatch.delenv("MAKEMORE_THREADS")
    monkeypatch.setenv("OMP_NUM_THREADS", "10000")  # set for other programs too: read as all the CPUs
    assert device.use_threads() == cpus


@pytest.mark.parametrize("value", ["abc", "0", "-1", "1.5"])
def test_a_bad_thread_count_in_the_environment_is_one_line(monkeypatch, value):
    monkeypatch.setenv("MAKEMORE_THREADS", value)
    result = CliRunner().invoke(cli, ["train", *tiny_args(max_steps=5), "--data", "names", "--out-dir", "x"])
    assert result.exit_code == 2
    message = (f"error: MAKEMORE_THREADS={value!r} is not a positive whole number of threads; set it to one "
               "(e.g. MAKEMORE_THREADS=2), or unset it to let makemore choose")
    assert result.output.strip().splitlines() == [message]


def test_the_automatic_count_is_never_more_than_torch_s_default_nor_less_than_one():
    assert 1 <= device.use_threads() <= device._torch_default


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2
                    or not os.path.exists("/proc/stat"), reason="needs 2 CPUs and /proc/stat")
def test_a_cpu_that_another_process_keeps_busy_gets_no_thread():
    before = device.free_cpus()
    proc = spinner(max(os.sched_getaffinity(0)))
    try:
        busy = device.busy_cpus(0.5)
        after = device.free_cpus()
    finally:
        proc.kill()
        proc.wait()
    assert busy >= 0.6  # the spinner's CPU counted as taken; this process's own time is not
    assert after == max(1, before - 1)  # on a machine that was busy already too


def test_threads_option_reaches_the_run(tmp_path, words_file):
    result = CliRunner().invoke(cli, ["train", *tiny_args(max_steps=5), "--data", str(words_file), "--out-dir",
                                      str(tmp_path), "--name", "one", "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert "device cpu (1 thread)" in result.output
    assert torch.get_num_threads() == 1


def test_threads_option_refuses_zero(tmp_path):
    result = CliRunner().invoke(cli, ["sample", "--run", str(tmp_path), "--threads", "0"])
    assert result.exit_code == 2
    assert "'--threads': 0 is not in the range x>=1" in result.output
