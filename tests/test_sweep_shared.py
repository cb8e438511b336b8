"""Sweeps that span machines, against real study stores: a PostgreSQL server started here (Debian's
`postgresql` package; .ci/run installs it) and Optuna's journal file. Two "machines" are two sweeps of one
study, each with its own working folder and workers; one is killed mid-trial and the other finishes."""
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import TINY_MODEL, assert_user_error, run
from test_sweep import read_results

PASSWORD = "a-secret-of-the-test's"  # a throwaway server's
GRID = list(range(8, 32, 2))  # 12 points: one trial each


def postgres_bin():
    """The folder of PostgreSQL's server programs, or None where it is not installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    initdb = found[-1] if found else shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL server on a free loopback port, as an unprivileged user (it refuses to run as root), with
    password authentication; yields the URL of a database for sweeps (without the password) and stops it."""
    pytest.importorskip("psycopg", reason="the postgres extra (psycopg) is not installed")
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL's server is not installed (Debian: apt install postgresql)")
    user = None
    if os.geteuid() == 0:
        user = "postgres" if shutil.which("id") and subprocess.run(["id", "postgres"], capture_output=True,
                                                                   check=False).returncode == 0 else "nobody"
    home = Path(tempfile.mkdtemp(prefix="makemore-pg-"))
    if user:
        shutil.chown(home, user)
    (home / "pw").write_text(PASSWORD)
    if user:
        shutil.chown(home / "pw", user)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    as_user = {"user": user} if user else {}

    def pg(*args):
        proc = subprocess.run([str(bin_dir / args[0]), *args[1:]], capture_output=True, text=True, timeout=120,
                              check=False, **as_user)
        assert proc.returncode == 0, proc.stderr
        return proc

    pg("initdb", "-D", str(home / "data"), "-U", "makemore", "--pwfile", str(home / "pw"), "-A", "scram-sha-256",
       "--no-sync")
    pg("pg_ctl", "-D", str(home / "data"), "-l", str(home / "log"), "-w", "-o",
       f"-c listen_addresses=127.0.0.1 -p {port} -k {home} -c fsync=off", "start")
    try:
        env = {**os.environ, "PGPASSWORD": PASSWORD}
        subprocess.run([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "makemore", "sweeps"],
                       env=env, check=True, capture_output=True, timeout=60)
        yield f"postgresql://makemore@127.0.0.1:{port}/sweeps"
    finally:
        pg("pg_ctl", "-D", str(home / "data"), "-m", "immediate", "stop")
        shutil.rmtree(home, ignore_errors=True)


def machine(tmp_path, name, *args):
    """One machine's `makemore sweep`, in its own working folder and process group (so it can be killed whole)."""
    folder = tmp_path / name
    folder.mkdir()
    return subprocess.Popen([sys.executable, "-m", "makemore", "sweep", *map(str, args)], cwd=folder,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "MAKEMORE_THREADS": "1", "MAKEMORE_STORAGE_PASSWORD": PASSWORD})


def wait_for(paths, what, seconds=180):
    deadline = time.monotonic() + seconds
    while not paths():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.parametrize("store", ["postgresql", "journal"])
def test_two_machines_finish_one_sweep_and_one_finishes_what_the_other_left_when_it_died(tmp_path, store, request,
                                                                                          monkeypatch):
    monkeypatch.setenv("MAKEMORE_STORAGE_PASSWORD", PASSWORD)
    url = request.getfixturevalue("postgres") + f"?application_name={tmp_path.name}" if store == "postgresql" \
        else f"journal:{tmp_path / 'shared' / 'study.log'}"
    if store == "journal":
        (tmp_path / "shared").mkdir()
    name = f"s{abs(hash(tmp_path)) % 10**6}"  # one study per test in the shared database
    sweeps = lambda m: tmp_path / m / "runs" / "sweeps" / name
    a = machine(tmp_path, "a", "--name", name, "--trials", len(GRID), "--parallel", 2, "--sampler", "grid",
                "--pruner", "none", "--param", f"n_hidden={','.join(map(str, GRID))}", "--n-embd",
                TINY_MODEL["n_embd"], "--max-steps", 3000, "--eval-interval", 1000, "--batch-size", 32, "--device",
                "cpu", "--storage", url)
    wait_for(lambda: list(sweeps("a").glob("trial-*/last.pt")), "machine a's first checkpoint")
    b = machine(tmp_path, "b", "--name", name, "--resume", "--parallel", 2, "--storage", url)
    running_on_a = lambda: [p for p in sweeps("a").glob("trial-*") if not (p / "metrics.json").exists()]
    wait_for(lambda: list(sweeps("b").glob("trial-*/last.pt")) and running_on_a(),
             "machine b's first checkpoint while a trial runs on machine a")
    os.killpg(a.pid, signal.SIGKILL)  # machine a dies mid-trial
    a.communicate(timeout=60)
    _, err = b.communicate(timeout=300)
    assert b.returncode == 0, err
    # b ran every trial it could; a's two stayed RUNNING (a worker of a dead machine), and --resume on b
    # runs them again (same parameters, new trial numbers) and finishes the sweep
    result = run("sweep", "--name", name, "--out-dir", sweeps("b").parent, "--resume", "--storage", url)
    assert result.exit_code == 0, result.output
    assert "interrupted trial(s) will run again" in result.output
    rows = read_results(sweeps("b"))
    assert len(rows) == len(GRID) and all(r["state"] == "complete" for r in rows)  # every trial recorded
    assert sorted(int(r["n_hidden"]) for r in rows) == GRID  # each point of the grid once: none run twice
    # each recorded trial finished on one machine, and both machines finished some (a trial killed after its
    # metrics.json but before the store heard of it ran again, so its folder on a does not count)
    on = lambda m: {p.name for p in sweeps(m).glob("trial-*") if (p / "metrics.json").exists()}
    recorded = {f"trial-{r['trial']}" for r in rows}
    assert recorded <= on("a") | on("b") and not on("a") & on("b")
    assert recorded & on("a") and recorded & on("b")


def test_a_database_that_does_not_answer_and_a_journal_that_is_not_there_are_one_line(tmp_path, postgres, monkeypatch):
    port = postgres.split(":")[2].split("/")[0]
    monkeypatch.setenv("MAKEMORE_STORAGE_PASSWORD", "wrong")
    assert_user_error(run("sweep", "--name", "x", "--out-dir", tmp_path, "--resume", "--storage", postgres),
                      "cannot open the study store")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    assert_user_error(run("sweep", "--name", "x", "--out-dir", tmp_path, "--resume", "--storage",
                          postgres.replace(port, str(closed))), "cannot open the study store")
    assert_user_error(run("sweep", "--name", "j", "--out-dir", tmp_path / "c", "--resume", "--storage",
                          f"journal:{tmp_path / 'nowhere.log'}"), "there is no journal at")


def test_a_trial_is_stale_when_its_worker_is_gone_or_its_machine_has_been_silent_too_long():
    from types import SimpleNamespace

    from makemore.sweep import STALE_SECONDS, stale

    here, now = socket.gethostname(), time.time()
    trial = lambda worker, **attrs: SimpleNamespace(user_attrs={"worker": worker, **attrs})
    assert not stale(trial(f"{here}:{os.getpid()}"))  # this machine, a live process
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert stale(trial(f"{here}:{dead}"))  # this machine, a process that has ended
    assert not stale(trial("elsewhere:1", alive_at=now - 60), now)  # another machine that spoke a minute ago
    assert stale(trial("elsewhere:1", alive_at=now - STALE_SECONDS - 1), now)  # one silent for too long
    assert not stale(trial("elsewhere:1"), now)  # an older makemore's trial, which never says: left alone


def test_every_trial_records_that_its_worker_was_alive(tmp_path):
    from makemore.sweep import Sweep

    result = run("sweep", "--name", "beat", "--out-dir", tmp_path, "--trials", 2, "--sampler", "grid", "--param",
                 "n_hidden=8,16", "--n-embd", 8, "--max-steps", 20, "--eval-interval", 10, "--device", "cpu")
    assert result.exit_code == 0, result.output
    trials = Sweep.open("beat", tmp_path).study().get_trials()
    assert len(trials) == 2 and all(isinstance(t.user_attrs.get("alive_at"), float) for t in trials)


def test_two_sweeps_of_one_name_started_together_make_one_sweep(tmp_path):
    args = [sys.executable, "-m", "makemore", "sweep", "--name", "twin", "--out-dir", str(tmp_path), "--trials", "2",
            "--sampler", "grid", "--param", "n_hidden=8,16", "--n-embd", "8", "--max-steps", "20", "--eval-interval",
            "10", "--device", "cpu"]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "MAKEMORE_THREADS": "1"}) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert sorted(code for code, _ in results) == [0, 2], results
    refused = next(err for code, err in results if code == 2).strip().splitlines()
    assert len(refused) == 1 and refused[0].startswith(f"error: sweep {tmp_path / 'twin'} exists; pass --resume"), \
        refused
    assert read_results(tmp_path / "twin") and len(read_results(tmp_path / "twin")) == 2


def test_a_new_sweep_whose_name_the_shared_store_holds_already_is_refused(tmp_path):
    journal = f"journal:{tmp_path / 'study.log'}"
    common = ["--trials", 1, "--param", "n_hidden=8,16", "--n-embd", 8, "--max-steps", 10, "--eval-interval", 10,
              "--device", "cpu", "--storage", journal]
    assert run("sweep", "--name", "one", "--out-dir", tmp_path / "a", *common).exit_code == 0
    assert_user_error(run("sweep", "--name", "one", "--out-dir", tmp_path / "b", *common),
                      "a sweep named one is in the store")
    assert not (tmp_path / "b" / "one").exists()
