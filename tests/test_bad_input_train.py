"""`makemore train` fed bad input: each case gives one line naming the problem and the fix, exit
status 2, no traceback, and leaves every existing run as it was."""
import errno
import signal
import subprocess
import sys

import pytest
import torch
from conftest import assert_user_error, run, snapshot, tiny_args

from makemore.checkpoint import load_checkpoint
from makemore.runs import Run

# -- data --------------------------------------------------------------------------------------

def test_missing_file(tmp_path):
    assert_user_error(run("train", "--data", tmp_path / "nope.txt", "--out-dir", tmp_path), "does not exist", "--data")


def test_empty_file(tmp_path):
    (tmp_path / "empty.txt").write_text("\n\n", encoding="utf-8")
    assert_user_error(run("train", "--data", tmp_path / "empty.txt", "--out-dir", tmp_path), "is empty")


def test_empty_folder(tmp_path):
    (tmp_path / "folder").mkdir()
    assert_user_error(run("train", "--data", tmp_path / "folder", "--out-dir", tmp_path), "holds no .txt files")


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


def test_unknown_encoding(tmp_path, words_file):
    assert_user_error(run("train", "--data", words_file, "--encoding", "klingon", "--out-dir", tmp_path),
                      "unknown encoding")


def test_a_huge_line_read_as_lines(tmp_path):
    (tmp_path / "huge.txt").write_text("ab" * 5000 + "\nshort\nitem\n", encoding="utf-8")
    assert_user_error(run("train", "--data", tmp_path / "huge.txt", "--kind", "lines", "--out-dir", tmp_path),
                      "a line of 10,000 characters", "--kind stream")


def test_a_huge_line_is_read_as_prose_by_default(tmp_path):
    (tmp_path / "huge.txt").write_text("the cat sat on the mat. " * 400, encoding="utf-8")
    result = run("train", "--data", tmp_path / "huge.txt", "--out-dir", tmp_path,
                 *tiny_args(max_steps=10, eval_interval=5, seq_len=32))
    assert result.exit_code == 0 and "read as stream" in result.output, result.output


def test_data_shorter_than_a_sequence(tmp_path):
    (tmp_path / "short.txt").write_text("Once upon a time.\n\nThe end.\n", encoding="utf-8")
    assert_user_error(run("train", "--data", tmp_path / "short.txt", "--out-dir", tmp_path),
                      "shorter than one sequence", "--seq-len")


def test_corpus_with_one_item(tmp_path):
    (tmp_path / "one.txt").write_text("emma\nemma\n", encoding="utf-8")
    assert_user_error(run("train", "--data", tmp_path / "one.txt", "--out-dir", tmp_path), "only 1 distinct item")


def test_block_size_larger_than_any_item_is_fine(tmp_path, words_file):
    # Items are padded with the boundary token on the left, as in the lectures: not an error.
    result = run(
        "train",
        "--data",
        words_file,
        "--block-size",
        64,
        "--out-dir",
        tmp_path,
        *tiny_args(max_steps=20, eval_interval=10),
    )
    assert result.exit_code == 0, result.output


def test_unknown_named_corpus_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("MAKEMORE_DATA", str(tmp_path))
    assert_user_error(run("train", "--data", "surnames", "--out-dir", tmp_path), "not cached", "--data PATH")


def test_missing_hugging_face_dataset(tmp_path):
    assert_user_error(run("train", "--data", "hf:no-such-user/no-such-dataset", "--out-dir", tmp_path),
                      "could not load Hugging Face dataset", "--data PATH")


# -- options -----------------------------------------------------------------------------------

def test_unknown_model(tmp_path):
    assert_user_error(run("train", "--model", "gpt9", "--out-dir", tmp_path), "--model", "gpt9")


def test_unknown_option(tmp_path):
    assert_user_error(run("train", "--learning-rate", 1, "--out-dir", tmp_path), "No such option", "--help")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu(tmp_path):
    assert_user_error(run("train", "--device", "cuda", "--out-dir", tmp_path), "no CUDA GPU", "--device auto")


def test_bigram_counts_need_smoothing(tmp_path):
    assert_user_error(run("train", "--model", "bigram", "--smoothing", 0, "--out-dir", tmp_path),
                      "--smoothing must be above 0", "infinite loss", "pass e.g. 1")


def test_empty_data(tmp_path):
    assert_user_error(run("train", "--data", " ", "--out-dir", tmp_path), "--data is empty", "corpus name: names")


def test_unknown_device(tmp_path):
    assert_user_error(run("train", "--device", "tpu9", "--out-dir", tmp_path), "unknown device", "--device auto")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_bf16_without_a_gpu_is_refused_before_the_run_is_written(tmp_path):
    assert_user_error(run("train", "--precision", "bf16", "--out-dir", tmp_path, "--name", "x"),
                      "--precision bf16 needs a CUDA device", "--precision auto or fp32")
    assert not (tmp_path / "x").exists()


def test_an_out_dir_that_cannot_be_made(tmp_path):
    (tmp_path / "taken").write_text("a file, not a folder\n")
    assert_user_error(run("train", "--out-dir", tmp_path / "taken" / "runs", *tiny_args(max_steps=2)),
                      f"cannot make the folder {tmp_path / 'taken' / 'runs'}", "--out-dir")


@pytest.mark.parametrize("option,value", [
    ("--lr", 0), ("--lr", -1e-3), ("--max-steps", -5), ("--batch-size", 0), ("--n-hidden", 0),
    ("--n-embd", -1), ("--block-size", 0), ("--n-layer", 0), ("--dropout", 1.5), ("--seq-len", 0), ("--val-frac", 1.0),
    ("--val-frac", 0), ("--eval-interval", 0), ("--weight-decay", -1), ("--patience", -1),
    ("--ema", 1), ("--ema", -0.5), ("--lr", "nan"), ("--weight-decay", "nan"), ("--grad-clip", "nan"),
    ("--min-lr-frac", 1.5), ("--min-lr-frac", "nan"), ("--input-noise", 1), ("--input-noise", -0.1),
])
def test_sizes_rates_and_steps_must_be_positive(tmp_path, option, value):
    result = run("train", option, value, "--out-dir", tmp_path)
    assert_user_error(result, option)
    assert "read as" not in result.output  # told before the data is read, which for a large text takes minutes


@pytest.mark.parametrize("args,fragments", [
    (["--model", "bigram", "--block-size", 5],
     ["the bigram model has no --block-size", "bigram takes --fit, --smoothing"]),
    (["--model", "mlp", "--n-head", 8], ["the mlp model has no --n-head", "--n-hidden"]),
    (["--model", "lstm", "--block-size", 8, "--norm", "batch"], ["the lstm model has no --block-size, --norm"]),
    (["--model", "mlp", "--encoder", "gru"], ["the mlp model has no --encoder"]),
    (["--model", "classifier", "--data", "names-sex", "--smoothing", 2],
     ["the classifier's body (--encoder lstm): the lstm model has no --smoothing"]),
])
def test_an_option_the_model_does_not_have_is_refused(tmp_path, args, fragments):
    assert_user_error(run("train", *args, "--out-dir", tmp_path, "--name", "x"), *fragments, "drop it")
    assert not (tmp_path / "x").exists()


def test_a_transformer_block_shorter_than_an_item_is_refused_before_the_run_is_written(tmp_path, words_file):
    assert_user_error(
        run("train", "--model", "transformer", "--data", words_file, "--block-size", 4, "--out-dir", tmp_path, "--name",
            "x"),
        "the train split has an item of",
        "more than the 3 that --block-size 4 reads",
    )
    assert not (tmp_path / "x").exists()


def test_held_out_shares_must_leave_a_train_split(tmp_path):
    assert_user_error(run("train", "--val-frac", 0.6, "--test-frac", 0.5, "--out-dir", tmp_path),
                      "--val-frac + --test-frac must be below 1", "0.6 + 0.5")


def test_tied_weights_need_equal_sizes(tmp_path):
    assert_user_error(run("train", "--model", "lstm", "--tie-weights", "true", "--out-dir", tmp_path),
                      "--tie-weights needs")


# -- existing runs -----------------------------------------------------------------------------

def test_an_existing_run_is_never_overwritten(trained_run):
    before = snapshot(trained_run)
    result = run("train", "--name", trained_run.name, "--out-dir", trained_run.parent)
    assert_user_error(result, "already exists", "--resume")
    assert "data:" not in result.output  # said before the data is read
    assert snapshot(trained_run) == before


def test_resume_of_a_run_that_does_not_exist(tmp_path):
    assert_user_error(run("train", "--resume", "--name", "ghost", "--out-dir", tmp_path),
                      f"there is no run {tmp_path / 'ghost'} to resume", "--name and --out-dir")
    assert_user_error(run("train", "--resume", "--out-dir", tmp_path), "--resume needs --name")


def test_resume_keeps_the_model_and_data(trained_run):
    before = snapshot(trained_run)
    assert_user_error(run("train", "--resume", "--name", trained_run.name, "--out-dir", trained_run.parent,
                          "--n-hidden", 512), "drop --n-hidden")
    assert_user_error(run("train", "--resume", "--name", trained_run.name, "--out-dir", trained_run.parent,
                          "--model", "lstm"), "drop --model")
    assert snapshot(trained_run) == before


def test_a_second_trainer_of_the_same_run_is_refused(trained_run, tmp_path):
    import shutil

    copy = tmp_path / "busy"
    shutil.copytree(trained_run, copy)
    before = snapshot(copy)
    holder = Run.open(copy)
    holder.lock()  # as a running trainer holds it
    assert_user_error(run("train", "--resume", "--name", "busy", "--out-dir", tmp_path, "--max-steps", 400),
                      "being trained by another process")
    assert snapshot(copy) == before


# -- faults during training --------------------------------------------------------------------

def test_out_of_memory_suggests_a_smaller_batch(tmp_path, monkeypatch):
    from makemore.models.mlp import MLP

    def oom(self, idx):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(MLP, "body", oom)
    assert_user_error(run("train", "--out-dir", tmp_path, "--name", "oom", *tiny_args(batch_size=64)),
                      "out of memory", "--batch-size (e.g. 32)")


def test_a_full_disk_during_a_checkpoint_write_keeps_the_previous_checkpoint(trained_run, tmp_path, monkeypatch):
    import shutil

    copy = tmp_path / "full"
    shutil.copytree(trained_run, copy)
    before = snapshot(copy)

    def no_space(obj, f):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", no_space)
    assert_user_error(run("train", "--resume", "--name", "full", "--out-dir", tmp_path, "--max-steps", 400),
                      "No space left on device", "previous version of it is intact")
    after = snapshot(copy)
    assert {k: v for k, v in after.items() if k.suffix == ".pt"} == {
        k: v for k, v in before.items() if k.suffix == ".pt"
    }
    assert not list(copy.glob(".*.tmp"))
    load_checkpoint(copy / "last.pt")


def test_kill_9_during_a_checkpoint_write_leaves_the_previous_checkpoint_loadable(trained_run, tmp_path):
    import shutil

    copy = tmp_path / "killed"
    shutil.copytree(trained_run, copy)
    before = (copy / "last.pt").read_bytes()
    # A child process starts writing a checkpoint over last.pt and is killed halfway through.
    script = f"""
import os, signal, torch
from makemore.checkpoint import save_checkpoint
def dying_save(obj, f):
    f.write(b"half a checkpoint")
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)
torch.save = dying_save
save_checkpoint({str(copy / 'last.pt')!r}, {{"model": {{}}}})
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, check=False)
    assert proc.returncode == -signal.SIGKILL
    assert (copy / "last.pt").read_bytes() == before
    assert load_checkpoint(copy / "last.pt")["step"] == 300
    result = run("train", "--resume", "--name", "killed", "--out-dir", tmp_path, "--max-steps", 320)
    assert result.exit_code == 0, result.output
