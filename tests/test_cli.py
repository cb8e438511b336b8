"""The commands as a user runs them, and every bad input of the core issue: one line, exit 2, nothing lost."""
import pickle

import pytest
import torch
from click.testing import CliRunner

from makemore.cli import cli

from conftest import tiny_args


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_user_error(result, *fragments):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_train_sample_eval(trained_run):
    result = run("sample", "--run", trained_run, "-n", 12, "--temperature", 0.8, "--prefix", "al", "--seed", 3)
    assert result.exit_code == 0, result.output
    samples = result.stdout.splitlines()
    assert len(samples) == 12 and all(s.startswith("al") for s in samples)
    assert "novel:" in result.stderr and "of 12 samples drawn" in result.stderr
    again = run("sample", "--run", trained_run, "-n", 12, "--temperature", 0.8, "--prefix", "al", "--seed", 3)
    assert again.stdout == result.stdout

    result = run("eval", "--run", trained_run)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("test loss ") and "nats/char" in result.stdout


def test_unique_samples_are_not_in_the_training_split(trained_run):
    from makemore.checkpoint import Run
    from makemore.data import load_corpus

    result = run("sample", "--run", trained_run, "-n", 30, "--unique", "--seed", 1)
    assert result.exit_code == 0, result.output
    samples = result.stdout.splitlines()
    train = set(load_corpus(Run.open(trained_run).data_config, log=lambda _: None).train)
    assert len(samples) == len(set(samples)) == 30 and not set(samples) & train


def test_top_k_one_is_greedy(trained_run):
    a = run("sample", "--run", trained_run, "-n", 5, "--top-k", 1, "--seed", 1).stdout.splitlines()
    b = run("sample", "--run", trained_run, "-n", 5, "--top-k", 1, "--seed", 2).stdout.splitlines()
    assert a == b and len(set(a)) == 1


def test_train_on_a_text_file_and_resume(tmp_path, words_file):
    result = run("train", "--data", words_file, "--out-dir", tmp_path, "--name", "w", *tiny_args(max_steps=100))
    assert result.exit_code == 0, result.output
    assert "read as lines" in result.output and "done (max_steps)" in result.output
    result = run("train", "--resume", "--name", "w", "--out-dir", tmp_path, "--max-steps", 200)
    assert result.exit_code == 0, result.output
    assert "resumed" in result.output and "after 200 steps" in result.output


def test_train_on_prose(tmp_path):
    text = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n\n" * 40
    (tmp_path / "prose.txt").write_text(text, encoding="utf-8")
    result = run("train", "--data", tmp_path / "prose.txt", "--out-dir", tmp_path, "--name", "p",
                 *tiny_args(max_steps=60, seq_len=32))
    assert result.exit_code == 0, result.output
    assert "read as stream" in result.output and "bits" not in result.output
    result = run("sample", "--run", tmp_path / "p", "-n", 2, "--max-len", 40, "--prefix", "To", "--seed", 0)
    assert result.exit_code == 0 and result.stdout.startswith("To")


def test_lstm_trains_on_prose_and_samples_with_a_prefix(tmp_path):
    text = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n\n" * 40
    (tmp_path / "prose.txt").write_text(text, encoding="utf-8")
    result = run("train", "--model", "lstm", "--data", tmp_path / "prose.txt", "--out-dir", tmp_path, "--name", "l",
                 *tiny_args(max_steps=60, seq_len=32))
    assert result.exit_code == 0, result.output
    result = run("sample", "--run", tmp_path / "l", "-n", 3, "--max-len", 30, "--prefix", "Whether", "--seed", 0)
    assert result.exit_code == 0, result.output
    assert result.stdout.count("Whether") >= 3


def test_default_run_names_do_not_collide(tmp_path, words_file):
    for _ in range(2):
        result = run("train", "--data", words_file, "--out-dir", tmp_path, *tiny_args(max_steps=20, eval_interval=10))
        assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["mlp-words", "mlp-words-2"]


# -- bad input ---------------------------------------------------------------------------------

def test_missing_file(tmp_path):
    assert_user_error(run("train", "--data", tmp_path / "nope.txt", "--out-dir", tmp_path), "does not exist", "--data")


def test_empty_file(tmp_path):
    (tmp_path / "empty.txt").write_text("\n\n", encoding="utf-8")
    assert_user_error(run("train", "--data", tmp_path / "empty.txt", "--out-dir", tmp_path), "is empty")


def test_binary_file(tmp_path):
    (tmp_path / "blob.bin").write_bytes(bytes(range(256)) * 4)
    assert_user_error(run("train", "--data", tmp_path / "blob.bin", "--out-dir", tmp_path), "looks binary")


def test_file_in_another_encoding_names_the_fix(tmp_path):
    (tmp_path / "latin.txt").write_bytes("andré\nzoë\nrené\n".encode("latin-1"))
    assert_user_error(run("train", "--data", tmp_path / "latin.txt", "--out-dir", tmp_path),
                      "not valid utf-8", "--encoding latin-1")
    result = run("train", "--data", tmp_path / "latin.txt", "--encoding", "latin-1", "--out-dir", tmp_path,
                 *tiny_args(max_steps=10, eval_interval=5))
    assert result.exit_code == 0, result.output


def test_data_shorter_than_a_sequence(tmp_path):
    (tmp_path / "short.txt").write_text("Once upon a time.\n\nThe end.\n", encoding="utf-8")
    assert_user_error(run("train", "--data", tmp_path / "short.txt", "--out-dir", tmp_path), "shorter than one sequence", "--seq-len")


def test_corpus_with_too_few_items(tmp_path):
    (tmp_path / "one.txt").write_text("emma\nemma\n", encoding="utf-8")
    assert_user_error(run("train", "--data", tmp_path / "one.txt", "--out-dir", tmp_path), "only 1 distinct item")


def test_prefix_with_an_unknown_character(trained_run):
    assert_user_error(run("sample", "--run", trained_run, "--prefix", "Zoë"), "'Z' (U+005A", "vocabulary")


def test_unknown_model(tmp_path):
    assert_user_error(run("train", "--model", "gpt9", "--out-dir", tmp_path), "--model", "gpt9")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu(tmp_path):
    assert_user_error(run("train", "--device", "cuda", "--out-dir", tmp_path), "no CUDA GPU", "--device auto")


@pytest.mark.parametrize("option,value", [("--lr", 0), ("--max-steps", -5), ("--n-hidden", 0), ("--dropout", 1.5),
                                          ("--batch-size", 0), ("--seq-len", 0), ("--val-frac", 1.0)])
def test_sizes_and_rates_must_be_positive(tmp_path, option, value):
    assert_user_error(run("train", option, value, "--out-dir", tmp_path), option)


def test_sampling_options_are_checked(trained_run):
    assert_user_error(run("sample", "--run", trained_run, "--temperature", 0), "--temperature must be positive")
    assert_user_error(run("sample", "--run", trained_run, "--top-k", 0), "--top-k must be positive")


def test_a_directory_that_is_not_a_run(tmp_path):
    assert_user_error(run("sample", "--run", tmp_path), "not a makemore run", "--run runs/<name>")
    assert_user_error(run("eval", "--run", tmp_path / "missing"), "not a makemore run")


def test_truncated_checkpoint(trained_run, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(trained_run, broken)
    data = (broken / "best.pt").read_bytes()
    (broken / "best.pt").write_bytes(data[: len(data) // 2])
    assert_user_error(run("sample", "--run", broken), "truncated or corrupt", "--checkpoint")
    assert run("sample", "--run", broken, "--checkpoint", "last", "--seed", 0).exit_code == 0


class Payload:
    def __reduce__(self):
        import os

        return (os.system, ("touch PWNED",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_pickle_with_a_code_payload_is_refused_and_never_runs(trained_run, tmp_path, monkeypatch):
    import shutil

    evil = tmp_path / "evil"
    shutil.copytree(trained_run, evil)
    with open(evil / "best.pt", "wb") as f:
        pickle.dump({"format": 1, "model": Payload()}, f)
    monkeypatch.chdir(tmp_path)
    assert_user_error(run("sample", "--run", evil), "was refused", "only checkpoints that makemore wrote")
    assert not (tmp_path / "PWNED").exists()


def test_resume_refuses_a_run_that_does_not_exist(tmp_path):
    assert_user_error(run("train", "--resume", "--name", "ghost", "--out-dir", tmp_path), "not a makemore run")
    assert_user_error(run("train", "--resume", "--out-dir", tmp_path), "--resume needs --name")


def test_resume_keeps_the_model_and_data(trained_run):
    assert_user_error(run("train", "--resume", "--name", trained_run.name, "--out-dir", trained_run.parent,
                          "--n-hidden", 512), "drop --n-hidden")
