"""`makemore sweep` fed bad input: one line, exit 2, no traceback, and no sweep or run harmed."""
import json
import os
import subprocess
import sys

import pytest
from conftest import TINY_MODEL, TINY_TRAIN, assert_user_error, run, snapshot, tiny_args

TINY = ["--n-embd", TINY_MODEL["n_embd"], "--max-steps", 60, "--eval-interval", 20, "--batch-size", 32,
        "--warmup-steps", 5, "--device", "cpu"]


@pytest.mark.parametrize(
    "args,fragments",
    [
        (["--param", "lr"], ["--param takes NAME=VALUES"]),
        (["--param", "lr=log:1e-2:1e-4"], ["range of lr is empty"]),
        (["--param", "dropout=nan..0.5"], ["range of dropout is empty"]),
        (["--param", "lr=log:0:1"], ["log range needs positive ends"]),
        (["--param", "lr=fast:1:2"], ["cannot read the range of lr"]),
        (["--param", "n_hiden=64,128"], ["no setting n_hiden", "n_hidden"]),
        (["--param", "lr=log:1e-4:1e-2", "--sampler", "grid"], ["--sampler grid needs a list of values for lr"]),
        ([], ["searches nothing", "--param"]),
        (["--param", "lr=0.1", "--trials", 0], ["--trials must be positive"]),
        (["--param", "lr=0.1", "--sampler-seed", -5], ["--sampler-seed must be a whole number from 0 to"]),
        (["--param", "lr=0.1", "--sampler", "bayes"], ["--sampler"]),
        (["--param", "lr=0.1,0.2", "--param", "lr=0.3"], ["--param lr is given twice (0.1,0.2 and 0.3)"]),
        (["--param", "lr=log:1e-3:1e-2", "--lr", 0.01], ["lr is both searched and fixed", "(--lr), not both"]),
        (["--param", "lr=0.1", "--storage", "bogus"], ["cannot open the study store bogus", "check --storage"]),
        (["--param", "lr=0.1", "--storage", "sqlite:////no/such/folder/x.db"],
         ["unable to open database file", "check --storage"]),
        (["--param", "lr=0.1", "--data", "no/such/words.txt"],
         ["data file no/such/words.txt does not exist"]),  # not in each trial
        (["--model", "classifier", "--param", "lr=0.1", "--data", "names"], ["corpus 'names' has no labels"]),
    ],
)
def test_bad_sweep_options(tmp_path, args, fragments):
    out = tmp_path / "sweeps"
    assert_user_error(run("sweep", "--out-dir", out, "--name", "x", *args), *fragments)
    assert not (out / "x").exists()


def test_bad_sweep_names_and_files(tmp_path):
    out = tmp_path / "sweeps"
    assert_user_error(run("sweep", "--out-dir", out, "--name", "nope", "--resume"), "no sweep at", "--param")
    assert_user_error(run("sweep", "--out-dir", out, "--resume"), "need --name")
    assert_user_error(run("sweep", "--out-dir", out, "--space", tmp_path / "missing.toml"), "no sweep file")
    bad = tmp_path / "bad.toml"
    bad.write_text("trials = [unclosed\n")
    assert_user_error(run("sweep", "--out-dir", out, "--space", bad), "not valid TOML")
    bad.write_text("trails = 3\n")
    assert_user_error(run("sweep", "--out-dir", out, "--space", bad), "unknown setting(s) trails")
    bad.write_text('[params]\nlr = "log:1e-3:1e-2"\n[fixed]\nlr = 0.01\n')
    assert_user_error(run("sweep", "--out-dir", out, "--space", bad), "lr is both searched and fixed")


def test_a_sweep_name_is_never_reused_and_settings_stay(tmp_path):
    out = tmp_path / "sweeps"
    assert run("sweep", "--out-dir", out, "--name", "one", "--trials", 1, "--param", "lr=0.01", *TINY).exit_code == 0
    before = snapshot(out / "one")
    assert_user_error(run("sweep", "--out-dir", out, "--name", "one", "--param", "lr=0.02", *TINY), "exists",
                      "--resume")
    assert_user_error(run("sweep", "--out-dir", out, "--name", "one", "--resume", "--max-steps", 5),
                      "keeps its settings")
    assert snapshot(out / "one") == before


def test_a_sweep_and_a_training_run_share_runs_safely(tmp_path):
    runs = tmp_path / "runs"
    train = subprocess.Popen([sys.executable, "-m", "makemore", "train", "--out-dir", str(runs), "--name", "solo",
                              *tiny_args()], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    result = run("sweep", "--out-dir", runs / "sweeps", "--name", "side", "--trials", 2, "--param", "lr=0.01,0.02",
                 "--sampler", "grid", *TINY)
    _, stderr = train.communicate(timeout=300)
    assert train.returncode == 0, stderr
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in runs.iterdir()) == ["solo", "sweeps"]
    assert (runs / "solo" / "metrics.json").exists() and (runs / "sweeps" / "side" / "results.csv").exists()
    assert sorted(p.name for p in (runs / "sweeps").iterdir()) == ["side"]
    assert json.loads((runs / "solo" / "metrics.json").read_text())["steps"] == TINY_TRAIN["max_steps"]


def test_bad_sweeps_from_a_language_model(tmp_path, labeled_folder, lm_run):
    out = tmp_path / "sweeps"
    base = ["sweep", "--out-dir", out, "--name", "x", "--data", labeled_folder, "--param", "lr=0.01,0.02"]
    assert_user_error(
        run(*base, "--from", lm_run, "--model", "mlp"), "--from finetunes a classifier", "drop --model mlp"
    )
    assert_user_error(run(*base, "--from", lm_run, "--n-hidden", 16), "the body comes from --from", "drop --n-hidden")
    assert_user_error(run(*base, "--from", lm_run, "--param", "encoder=lstm,gru"), "drop --encoder")
    assert_user_error(run(*base, "--from", lm_run, "--bidirectional", "true"), "when --backward gives it",
                      "drop --bidirectional")
    assert_user_error(run(*base, "--backward", lm_run), "second body of classifiers finetuned", "pass --from")
    assert_user_error(run(*base, "--from", lm_run, "--backward", lm_run),
                      f"--backward {lm_run} reads items left to right")
    assert_user_error(run(*base, "--from", tmp_path / "nowhere"), "nowhere is not a makemore run",
                      "pass --from runs/<name>")
    clf = tmp_path / "clf"
    assert (
        run("train", "--model", "classifier", "--data", labeled_folder, "--out-dir", tmp_path, "--name", "clf",
            "--max-steps", 5, "--eval-interval", 5, "--n-embd", 8, "--n-hidden", 16, "--device", "cpu").exit_code
        == 0
    )
    assert_user_error(run(*base, "--from", clf), "is a classifier run, not a language model")
    assert not (out / "x").exists()


def test_a_journal_that_is_not_a_journal_file_is_refused_before_it_is_read(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    huge = tmp_path / "huge.journal"
    with open(huge, "wb") as f:
        f.truncate(1 << 30)  # sparse: a gigabyte that takes no room
    junk = tmp_path / "junk.journal"
    junk.write_bytes(bytes(range(256)) * 40)
    for path, fragment in [("/dev/zero", "is not a regular file"), (fifo, "is not a regular file"),
                           (tmp_path, "is not a regular file"), (huge, "1,024 MB, far larger than a sweep's journal"),
                           (junk, "is damaged or not a sweep's journal")]:
        assert_user_error(run("sweep", "--out-dir", tmp_path / "sweeps", "--name", "j", "--param", "lr=0.1",
                              "--storage", f"journal:{path}", *TINY), fragment)
    assert not (tmp_path / "sweeps" / "j").exists()
