"""Paths, names and files a hostile user gives: makemore writes only inside --out-dir, into folders of its
own, never over a file that is not its own, reads only what it can read to the end, and says so in one line
(exit 2, no traceback)."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from conftest import assert_user_error, run, snapshot, tiny_args

S = tiny_args(max_steps=20, eval_interval=10)
BAD_NAMES = ["../escape", "/tmp/abs", ".", "..", "a/b", "a\\b", "new\nline", "tab\there", " "]


def tree(root):
    """Every path under root: to prove that nothing was written elsewhere."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_name_is_one_folder_under_out_dir(tmp_path, words_file, name):
    out = tmp_path / "work" / "runs"
    out.mkdir(parents=True)
    before = tree(tmp_path)
    for command in (["train", *S, "--data", words_file], ["lr-find", "--data", words_file, "--steps", 10],
                    ["finetune", "--from", out / "lm", "--data", words_file],
                    ["sweep", "--data", words_file, "--param", "lr=0.01,0.02", *S]):
        assert_user_error(run(*command, "--out-dir", out, "--name", name), f"--name {name!r} is not a")
    assert tree(tmp_path) == before


def test_the_api_takes_the_same_names(tmp_path, words_file):
    import makemore as mm

    for name in ("../escape", "."):
        with pytest.raises(mm.MakemoreError, match="is not a run name"):
            mm.train("mlp", words_file, out_dir=tmp_path, name=name, max_steps=5)
    assert list(tmp_path.iterdir()) == [words_file]


def test_a_folder_that_is_not_a_run_is_left_alone(tmp_path, words_file):
    mine = tmp_path / "proj"
    mine.mkdir()
    (mine / "config.json").write_text('{"mine": 1}\n')
    (mine / "notes.txt").write_text("my notes\n")
    hf = tmp_path / "bert"  # a Hugging Face model's folder: a config.json and a tokenizer.json of its own
    hf.mkdir()
    (hf / "config.json").write_text('{"architectures": ["BertModel"]}\n')
    (hf / "tokenizer.json").write_text("{}\n")
    (tmp_path / "afile").write_text("x\n")
    before = snapshot(tmp_path)
    for name in ("proj", "bert"):
        assert_user_error(run("train", *S, "--data", words_file, "--out-dir", tmp_path, "--name", name),
                          "not a makemore run's", "another --name")
    assert_user_error(run("train", *S, "--data", words_file, "--out-dir", tmp_path, "--name", "afile"), "is a file")
    assert_user_error(run("sweep", "--data", words_file, "--param", "lr=0.01,0.02", *S, "--out-dir", tmp_path,
                          "--name", "proj"), "is not empty")
    assert snapshot(tmp_path) == before


def test_a_run_that_saved_no_checkpoint_may_be_trained_again(tmp_path, words_file):
    assert run("train", *S, "--data", words_file, "--out-dir", tmp_path, "--name", "r").exit_code == 0
    for f in ("last.pt", "best.pt"):
        (tmp_path / "r" / f).unlink()
    result = run("train", *S, "--data", words_file, "--out-dir", tmp_path, "--name", "r")
    assert result.exit_code == 0, result.output


def test_lr_find_does_not_write_over_a_curve(tmp_path, words_file):
    (tmp_path / "lr.csv").write_text("mine\n")
    before = snapshot(tmp_path)
    assert_user_error(run("lr-find", "--data", words_file, "--steps", 10, "--out-dir", tmp_path, "--name", "lr"),
                      "lr.csv exists already")
    assert snapshot(tmp_path) == before


def test_eval_items_may_not_be_a_file_of_a_run(trained_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(trained_run, copy)
    before = snapshot(copy)
    for target in ("best.pt", "config.json", "metrics.json"):
        assert_user_error(run("eval", "--run", copy, "--items", copy / target), "a file of a run")
    assert_user_error(run("eval", "--run", copy, "--items", tmp_path), "is a directory")
    if os.path.exists("/dev/null"):
        assert_user_error(run("eval", "--run", copy, "--items", "/dev/null"), "is not a regular file")
    assert snapshot(copy) == before
    assert run("eval", "--run", copy, "--items", copy / "items.tsv").exit_code == 0  # a new file may go there


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_data_and_space_must_be_regular_files(tmp_path):
    fifo = tmp_path / "fifo.txt"
    os.mkfifo(fifo)
    assert_user_error(run("train", *S, "--data", fifo, "--out-dir", tmp_path), "not a regular file or folder")
    if os.path.exists("/dev/zero"):
        assert_user_error(run("train", *S, "--data", "/dev/zero", "--out-dir", tmp_path), "not a regular file")
        assert_user_error(run("sweep", "--space", "/dev/zero", "--out-dir", tmp_path), "not a regular file")
    big = tmp_path / "big.toml"
    with open(big, "wb") as f:
        f.truncate(2 << 20)  # sparse: 2 MB of nothing, larger than a sweep file ever is
    assert_user_error(run("sweep", "--space", big, "--out-dir", tmp_path), "larger than 1 MB")
    loop = tmp_path / "loop.txt"
    loop.symlink_to(loop)
    assert_user_error(run("train", *S, "--data", loop, "--out-dir", tmp_path), "does not exist")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.toml", "fifo.txt", "loop.txt"]


@pytest.mark.parametrize(("encoding", "expected"), [
    ("base64", "is not a text encoding"), ("rot13", "is not a text encoding"), ("zlib", "is not a text encoding"),
    ("utf-16", "not valid utf-16"), ("klingon", "unknown encoding"),
])
def test_encodings_that_cannot_read_text(tmp_path, encoding, expected):
    odd = tmp_path / "odd.txt"
    odd.write_bytes(b"abc\ndef\ngh\n")  # 11 bytes: UTF-16 without a byte-order mark cuts its last character
    assert_user_error(run("train", *S, "--data", odd, "--encoding", encoding, "--out-dir", tmp_path / "runs"),
                      expected)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("args", [
    ["--seed", 2**64], ["--seed", -1], ["--lr", "inf"], ["--weight-decay", "inf"], ["--grad-clip", "inf"],
])
def test_numbers_out_of_range_are_refused(tmp_path, words_file, args):
    assert_user_error(run("train", *S, "--data", words_file, *args, "--out-dir", tmp_path), args[0])
    assert list(tmp_path.iterdir()) == [words_file]


def test_bigram_smoothing_must_be_finite(tmp_path, words_file):
    assert_user_error(run("train", "--model", "bigram", "--smoothing", "inf", "--data", words_file, "--out-dir",
                          tmp_path), "--smoothing")


def test_sample_seed_out_of_range(trained_run):
    assert_user_error(run("sample", "--run", trained_run, "--seed", 2**64), "--seed")


def test_a_device_makemore_does_not_run_on(tmp_path, words_file):
    assert_user_error(run("train", *tiny_args(device="meta"), "--data", words_file, "--out-dir", tmp_path),
                      "--device meta is not one makemore trains on")
    assert list(tmp_path.iterdir()) == [words_file]


def test_a_tokenizer_that_disagrees_with_the_model(trained_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(trained_run, copy)
    tok = json.loads((copy / "tokenizer.json").read_text())
    tok["chars"] = tok["chars"][:-1]
    (copy / "tokenizer.json").write_text(json.dumps(tok))
    before = snapshot(copy)
    for command in ("eval", "sample"):
        assert_user_error(run(command, "--run", copy), "the run directory is damaged")
    assert snapshot(copy) == before


def test_a_sweep_keeps_its_data_path_absolute(tmp_path, words_file, monkeypatch):
    from makemore.search import new_sweep_config

    monkeypatch.chdir(words_file.parent)
    cfg = new_sweep_config("s", "mlp", words_file.name, None, None, ["lr=0.01,0.02"], None, tmp_path, {})
    assert cfg.data == str(words_file)


def test_a_sweep_resumed_where_its_data_is_missing_runs_no_trial(tmp_path, words_file):
    from makemore.search import new_sweep_config
    from makemore.sweep import Sweep

    data = tmp_path / "data" / "words.txt"
    data.parent.mkdir()
    shutil.copy(words_file, data)
    cfg = new_sweep_config("gone", "mlp", str(data), None, None, ["lr=0.01,0.02"], None, tmp_path / "sweeps", {})
    sweep = Sweep.create(cfg, tmp_path / "sweeps")
    data.unlink()  # as on a machine that lacks it, or after it was moved
    before = snapshot(sweep.dir)
    assert_user_error(run("sweep", "--name", "gone", "--out-dir", tmp_path / "sweeps", "--resume"), str(data))
    assert snapshot(sweep.dir) == before and not sweep.study().get_trials()  # no trial ran, failed or counted


def test_a_storage_password_is_never_shown_or_saved(tmp_path, words_file):
    url = "mysql://admin:S3cret@127.0.0.1:1/x"
    result = run("sweep", "--data", words_file, "--param", "lr=0.01,0.02", *S, "--out-dir", tmp_path, "--storage", url)
    assert_user_error(result, "holds a password", "MAKEMORE_STORAGE_PASSWORD", "mysql://admin@127.0.0.1:1/x")
    assert "S3cret" not in result.output
    result = run("sweep", "--name", "x", "--resume", "--out-dir", tmp_path, "--storage", url)
    assert_user_error(result, "holds a password")
    assert "S3cret" not in result.output
    assert list(tmp_path.iterdir()) == [words_file]


def test_the_password_comes_from_the_environment(monkeypatch):
    from makemore.sweep import connection_url

    # postgresql:// goes through psycopg (3) where psycopg2 is not installed
    assert connection_url("postgresql://me@db:5432/s", "p@ss/word").split("://")[1] == "me:p%40ss%2Fword@db:5432/s"
    assert connection_url("mysql://me@db/s", None) == "mysql://me@db/s"
    assert connection_url("sqlite:///x.db", "p") == "sqlite:///x.db"


def test_a_download_is_capped_and_leaves_nothing_behind(tmp_path, monkeypatch):
    big = tmp_path / "big.txt"
    big.write_text("abcdefgh\n" * 300_000)  # 2.7 MB
    monkeypatch.setenv("MAKEMORE_MAX_DOWNLOAD_MB", "1")
    monkeypatch.delenv("MAKEMORE_OFFLINE")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    assert_user_error(run("train", *S, "--data", big.as_uri(), "--out-dir", tmp_path / "runs"),
                      "larger than 1 MB, the limit", "MAKEMORE_MAX_DOWNLOAD_MB")
    cache = tmp_path / "cache"
    assert not [p for p in cache.rglob("*") if p.is_file()]  # no .partial file left


def test_a_download_killed_midway_leaves_nothing_behind(tmp_path, monkeypatch):
    from makemore.data import sources

    monkeypatch.delenv("MAKEMORE_OFFLINE")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    big = tmp_path / "big.txt"
    big.write_text("abcdefgh\n" * 10)
    real_new_file = sources.new_file  # a write that gets SIGTERM half way through, as `kill` would deliver it

    def killed_new_file(path):
        f = real_new_file(path)
        if str(path).endswith(".partial"):
            os.kill(os.getpid(), signal.SIGTERM)
        return f

    monkeypatch.setattr(sources, "new_file", killed_new_file)
    with pytest.raises(KeyboardInterrupt):
        sources.resolve_url(big.as_uri())
    monkeypatch.undo()
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_a_config_edited_to_an_enormous_model_is_refused_before_it_is_built(trained_run, tmp_path, words_file):
    copy = tmp_path / "copy"
    shutil.copytree(trained_run, copy)
    config = json.loads((copy / "config.json").read_text())
    config["model_config"]["n_hidden"] = 10**9
    (copy / "config.json").write_text(json.dumps(config))
    before = snapshot(copy)
    for command in ("eval", "sample"):
        assert_user_error(run(command, "--run", copy), "does not match the model in config.json", "(1000000000, ")
    assert snapshot(copy) == before
    assert_user_error(run("train", *S, "--data", words_file, "--n-hidden", 10**9, "--out-dir", tmp_path, "--name",
                          "huge"), "parameters, which need", "GiB free", "pass smaller sizes")
    assert not (tmp_path / "huge").exists()


def test_a_step_too_large_for_the_memory_is_refused_before_it_is_allocated(tmp_path, words_file):
    """The batch's activations are measured on a few short rows and extrapolated: a --batch-size or a context far
    too large is one line naming what to shrink, in seconds, and leaves no folder."""
    prose = tmp_path / "long.txt"
    prose.write_text("the quick brown fox jumps over the lazy dog. " * 6000)  # 270,000 characters
    cases = [(["--data", words_file, "--batch-size", 10**7], "pass --batch-size "),
             (["--data", prose, "--model", "transformer", "--block-size", 100_000, "--seq-len", 100_000, "--val-frac",
               0.1, "--test-frac", 0.1], "pass a smaller --block-size or --seq-len (one row alone does not fit)")]
    for args, fix in cases:
        start = time.monotonic()
        assert_user_error(run("train", *args, "--max-steps", 10, "--out-dir", tmp_path, "--name", "big", "--device",
                              "cpu"), "one training step of", "GiB free", fix)
        assert time.monotonic() - start < 60
        assert not (tmp_path / "big").exists()


def test_a_checkpoint_of_another_run_of_the_same_shape_is_refused(tmp_path, words_file):
    for name in ("a", "b"):  # two runs of one configuration: their checkpoints would load into each other
        assert run("train", *S, "--data", words_file, "--out-dir", tmp_path, "--name", name).exit_code == 0
    for which in ("last", "best"):
        shutil.copy(tmp_path / "b" / f"{which}.pt", tmp_path / "a" / f"{which}.pt")
    before = snapshot(tmp_path / "a")
    assert_user_error(run("train", "--resume", "--name", "a", "--out-dir", tmp_path, "--max-steps", 40),
                      "last.pt is a checkpoint of another run", "put this run's own checkpoint back")
    for command in ("eval", "sample"):
        assert_user_error(run(command, "--run", tmp_path / "a"), "best.pt is a checkpoint of another run")
    assert snapshot(tmp_path / "a") == before
    shutil.copytree(tmp_path / "b", tmp_path / "b-copy")  # a copy of a whole run is that run: it resumes
    assert run("train", "--resume", "--name", "b-copy", "--out-dir", tmp_path, "--max-steps", 30).exit_code == 0


def immutable(path, on=True):
    """chattr +i: a file or folder that even root cannot change (False where the filesystem or tool lacks it)."""
    if not shutil.which("chattr"):
        return False
    return subprocess.run(["chattr", "+i" if on else "-i", str(path)], capture_output=True, check=False).returncode == 0


@pytest.mark.parametrize("frozen", ["the run's folder", "its lock file"])
def test_resuming_a_run_that_cannot_be_written_is_one_line(trained_run, tmp_path, frozen):
    copy = tmp_path / "copy"
    shutil.copytree(trained_run, copy)
    (copy / ".lock").touch()
    target = copy if frozen == "the run's folder" else copy / ".lock"
    if not immutable(target):
        pytest.skip("no chattr +i here (a read-only file would not stop root)")
    try:
        before = snapshot(copy)
        result = run("train", "--resume", "--name", "copy", "--out-dir", tmp_path, "--max-steps", 400)
        assert_user_error(result, "Operation not permitted", str(target if frozen != "the run's folder" else copy))
        assert snapshot(copy) == before
    finally:
        immutable(target, on=False)


def test_one_damaged_metrics_file_does_not_break_the_runs_table(trained_run, tmp_path):
    for name, metrics in (("good", None), ("types", {"parameters": "many"}), ("folder", "folder")):
        shutil.copytree(trained_run, tmp_path / name)
        path = tmp_path / name / "metrics.json"
        if metrics == "folder":
            path.unlink()
            path.mkdir()
        elif metrics:
            path.write_text(json.dumps({**json.loads(path.read_text()), **metrics}))
    result = run("runs", tmp_path)
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.output.splitlines()[1:4]}
    assert "done" in rows["good"] and "unreadable" in rows["types"] and "unreadable" in rows["folder"]


def test_a_resumed_run_whose_data_is_gone(tmp_path):
    data = tmp_path / "words.txt"
    data.write_text("\n".join(f"w{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}" for i in range(300)) + "\n")
    assert run("train", *S, "--data", data, "--out-dir", tmp_path, "--name", "r").exit_code == 0
    data.unlink()
    assert_user_error(run("train", "--resume", "--out-dir", tmp_path, "--name", "r", "--max-steps", 40),
                      f"{data}, the data of {tmp_path / 'r'}, does not exist any more; put it back where the run "
                      "read it")


@pytest.mark.parametrize(("setting", "expected"), [
    ('trials = "many"', "--trials must be a number, got 'many'"),
    ('[fixed]\nmax_steps = "20"', "--max-steps must be a number, got '20'"),
])
def test_a_space_file_of_the_wrong_types(tmp_path, words_file, setting, expected):
    space = tmp_path / "space.toml"
    space.write_text(f'{setting}\n[params]\nlr = "0.01,0.02"\n' if "[fixed]" not in setting
                     else f'[params]\nlr = "0.01,0.02"\n{setting}\n')
    result = run("sweep", "--space", space, "--data", words_file, "--out-dir", tmp_path / "sweeps", "--name", "s")
    assert_user_error(result, expected)


def test_a_cache_that_is_a_file(tmp_path, monkeypatch, words_file):
    monkeypatch.setenv("MAKEMORE_CACHE", str(words_file))
    monkeypatch.delenv("MAKEMORE_OFFLINE")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    assert_user_error(run("train", *S, "--data", words_file.as_uri(), "--out-dir", tmp_path / "runs"),
                      "cannot make the download folder", "MAKEMORE_CACHE")


@pytest.fixture
def hostile(tmp_path):
    """Paths no command can read to the end or write: a FIFO with no writer, a device that never ends, a
    symlink that points at itself, a 1 GB sparse file, an empty folder."""
    made = {"loop": tmp_path / "loop.txt", "sparse": tmp_path / "sparse.txt", "folder": tmp_path / "empty"}
    made["loop"].symlink_to(made["loop"])
    with open(made["sparse"], "wb") as f:
        f.truncate(1 << 30)  # 1 GB of NUL bytes, none of them on disk
    made["folder"].mkdir()
    if hasattr(os, "mkfifo"):
        made["fifo"] = tmp_path / "fifo.txt"
        os.mkfifo(made["fifo"])
    if os.path.exists("/dev/zero"):
        made["device"] = "/dev/zero"
    return made


COMMANDS = {  # every command's path options; {P} is the hostile path, {R} a trained run, {D} a words file
    "train --data": ["train", "--data", "{P}", *S],
    "lr-find --data": ["lr-find", "--data", "{P}", "--steps", "10"],
    "sweep --data": ["sweep", "--data", "{P}", "--param", "lr=0.01,0.02", *S],
    "sweep --space": ["sweep", "--space", "{P}"],
    "compare --data": ["compare", "--data", "{P}", "--models", "bigram"],
    "transfer --data": ["transfer", "--data", "{P}", "--seeds", "1", "--fractions", "1"],
    "finetune --data": ["finetune", "--from", "{R}", "--data", "{P}"],
    "finetune --from": ["finetune", "--from", "{P}", "--data", "{D}"],
    "eval --data": ["eval", "--run", "{R}", "--data", "{P}"],
    "eval --items": ["eval", "--run", "{R}", "--items", "{P}"],
    "eval --run": ["eval", "--run", "{P}"],
    "sample --run": ["sample", "--run", "{P}"],
    "classify --run": ["classify", "--run", "{P}", "anna"],
    "inspect --run": ["inspect", "--run", "{P}"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_path_option_refuses_what_it_cannot_read(command, hostile, trained_run, words_file, tmp_path):
    def give_up(signum, frame):
        raise TimeoutError(f"{command} did not answer within 30 s")

    before = signal.signal(signal.SIGALRM, give_up)
    try:
        for kind, path in hostile.items():
            if command == "eval --items" and kind in ("folder", "loop", "sparse"):
                continue  # click refuses a folder; a file of the user's own may be written over, as `>` does
            args = [a.format(P=path, R=trained_run, D=words_file) for a in COMMANDS[command]]
            signal.alarm(30)
            result = run(*args, "--out-dir", tmp_path / "out") if "--run" not in command and "eval" not in command \
                else run(*args)
            signal.alarm(0)
            assert result.exit_code == 2, (kind, result.output)
            assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output, (kind, result)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, before)


def test_an_unreachable_hub_is_one_line_within_seconds(tmp_path, monkeypatch):
    for name in ("MAKEMORE_OFFLINE", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there: refused at once
    code = ("import sys; from makemore.cli import main; sys.argv = ['makemore', 'train', '--data', "
            f"'hf:someone/some-dataset', '--out-dir', {str(tmp_path)!r}]; main()")
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HF_HOME": str(tmp_path / "hf")})
    assert done.returncode == 2, done.stderr
    message = ("error: could not load Hugging Face dataset 'someone/some-dataset': the hub cannot be reached from here "
               "and the dataset is not in the cache; check the network, or download it and pass --data PATH")
    assert done.stderr.strip().splitlines() == [message]
    assert time.monotonic() - start < 20  # not half a minute of retries
