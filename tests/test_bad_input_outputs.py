"""Every file a command writes: never through a symbolic link, never over a file of the user's, never half
written; and the runs a failure leaves behind: none."""
import errno
import os
import shutil
import subprocess
import sys

import pytest
from conftest import assert_user_error, run, tiny_args

from makemore import files
from makemore.errors import MakemoreError


@pytest.fixture
def outside(tmp_path):
    """A file of the user's outside any output folder, which a link in one may point to."""
    path = tmp_path / "mine.txt"
    path.write_text("my own notes\n")
    return path


def test_write_file_replaces_only_its_own_files(tmp_path, outside):
    target = tmp_path / "out" / "table.md"
    target.parent.mkdir()
    files.write_text(target, "one\n")
    files.write_text(target, "two\n")  # its own file: replaced
    assert target.read_text() == "two\n"

    target.write_text("edited by hand\n")  # the user's now
    with pytest.raises(MakemoreError, match="makemore did not write it"):
        files.write_text(target, "three\n")
    assert target.read_text() == "edited by hand\n"

    link = tmp_path / "out" / "link.md"
    link.symlink_to(outside)
    dangling = tmp_path / "out" / "dangling.md"
    dangling.symlink_to(tmp_path / "nowhere.md")
    for path in (link, dangling):
        with pytest.raises(MakemoreError, match="is a symbolic link"):
            files.write_text(path, "x\n")
    assert outside.read_text() == "my own notes\n" and not (tmp_path / "nowhere.md").exists()

    (tmp_path / "out" / "folder.md").mkdir()
    with pytest.raises(MakemoreError, match="is not a regular file"):
        files.write_text(tmp_path / "out" / "folder.md", "x\n")


def test_a_copied_folder_keeps_its_files_as_makemore_s(tmp_path):
    (tmp_path / "a").mkdir()
    files.write_text(tmp_path / "a" / "x.json", "{}\n")
    shutil.copytree(tmp_path / "a", tmp_path / "b", copy_function=shutil.copy)  # new modification times
    files.write_text(tmp_path / "b" / "x.json", "[]\n")
    assert (tmp_path / "b" / "x.json").read_text() == "[]\n"


@pytest.mark.parametrize("failure", [OSError(errno.ENOSPC, "No space left on device"),
                                     RuntimeError("[enforce fail at inline_container.cc:672] unexpected pos")])
def test_a_write_that_fails_keeps_the_old_file_and_says_so_in_one_line(tmp_path, failure):
    def broken(f):
        f.write(b"half")
        raise failure

    path = tmp_path / "best.pt"
    with pytest.raises(MakemoreError, match="could not write .*best.pt .*nothing was written"):
        files.write_file(path, broken)
    assert not path.exists()
    files.write_text(path, "good\n")
    with pytest.raises(MakemoreError, match="the previous version of it is intact"):
        files.write_file(path, broken)
    assert path.read_text() == "good\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".makemore-files.json", "best.pt"]  # no temporary left


def test_inspect_writes_no_figure_through_a_link_nor_over_a_users_own(trained_run, tmp_path, outside):
    copy = tmp_path / "tiny"
    shutil.copytree(trained_run, copy)
    (copy / "embeddings.png").symlink_to(outside)
    assert_user_error(run("inspect", "--run", copy), "embeddings.png is a symbolic link")
    assert outside.read_text() == "my own notes\n"
    (copy / "embeddings.png").unlink()
    (copy / "activations.png").write_text("my own figure")
    assert_user_error(run("inspect", "--run", copy), "activations.png exists and makemore did not write it")
    assert (copy / "activations.png").read_text() == "my own figure"
    (copy / "activations.png").unlink()
    for _ in range(2):  # its own figures, drawn again, are replaced
        result = run("inspect", "--run", copy)
        assert result.exit_code == 0, result.output
    assert (copy / "activations.png").stat().st_size > 10_000


def test_lr_find_refuses_a_link_that_leads_nowhere(tmp_path, words_file):
    out = tmp_path / "lr"
    out.mkdir()
    (out / "curve.csv").symlink_to(tmp_path / "elsewhere.csv")
    assert_user_error(run("lr-find", "--data", words_file, "--out-dir", out, "--name", "curve", "--steps", 20),
                      "curve.csv exists already")
    assert not (tmp_path / "elsewhere.csv").exists()


@pytest.mark.parametrize("command,table", [("compare", "compare.md"), ("transfer", "transfer.csv")])
def test_compare_and_transfer_leave_a_users_tables_alone_before_training_anything(tmp_path, labeled_folder, command,
                                                                                  table):
    out = tmp_path / "out"
    out.mkdir()
    (out / table).write_text("my table\n")
    data = ["--data", labeled_folder] if command == "transfer" else ["--models", "mlp"]
    assert_user_error(run(command, "--out-dir", out, *data), f"{table} exists and makemore did not write it")
    assert [p.name for p in out.iterdir()] == [table] and (out / table).read_text() == "my table\n"


def test_eval_items_writes_a_new_file_or_its_own_but_no_other(trained_run, tmp_path, outside):
    link = tmp_path / "link.tsv"
    link.symlink_to(outside)
    assert_user_error(run("eval", "--run", trained_run, "--items", link), "link.tsv is a symbolic link")
    assert_user_error(run("eval", "--run", trained_run, "--items", outside), "mine.txt exists and makemore did not")
    assert outside.read_text() == "my own notes\n"
    items = tmp_path / "items.tsv"
    for _ in range(2):  # a file it wrote is written again
        result = run("eval", "--run", trained_run, "--items", items)
        assert result.exit_code == 0, result.output
    assert items.read_text().startswith("item\t")


def test_a_new_run_that_fails_before_its_first_checkpoint_leaves_no_folder(tmp_path, words_file, monkeypatch):
    real = files._replace

    def full_disk(path, write, existed):
        if path.name == "tokenizer.json":
            raise MakemoreError(f"could not write {path} (No space left on device); nothing was written: free disk "
                                "space (or fix permissions) and run the command again")
        return real(path, write, existed)

    monkeypatch.setattr(files, "_replace", full_disk)
    assert_user_error(run("train", "--data", words_file, "--out-dir", tmp_path / "runs", "--name", "r",
                          *tiny_args(max_steps=5)), "tokenizer.json", "nothing was written")
    assert not (tmp_path / "runs" / "r").exists()


def test_a_damaged_checkpoint_is_named_so_without_torch_s_unsafe_advice(trained_run, tmp_path):
    copy = tmp_path / "tiny"
    shutil.copytree(trained_run, copy)
    (copy / "best.pt").write_bytes(os.urandom(5000))
    result = run("sample", "--run", copy)
    assert_user_error(result, "best.pt is damaged or not a checkpoint")
    assert "weights_only" not in result.stderr


def test_a_text_of_many_distinct_characters_says_so_and_offers_min_char_count(tmp_path):
    text = tmp_path / "many.txt"
    chars = [chr(0x4E00 + k) for k in range(1500)]  # 1,500 CJK characters, each once, and a few common ones
    text.write_text("\n".join(["".join(chars[k:k + 5]) for k in range(0, 1500, 5)] + ["abc", "abd"] * 200) + "\n",
                    encoding="utf-8")
    result = run("train", "--data", text, "--out-dir", tmp_path / "runs", *tiny_args(max_steps=2))
    assert result.exit_code == 0, result.output
    assert "distinct characters, each with its own id" in result.output
    assert "pass --min-char-count 2 to keep the" in result.output


def makemore(*args):
    return [sys.executable, "-m", "makemore", *map(str, args)]


def test_a_reader_that_goes_stops_the_sampling_quietly(trained_run):
    proc = subprocess.Popen(makemore("sample", "--run", trained_run, "-n", 5_000_000), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdout.readline()  # as `| head -1` reads, then leaves
    proc.stdout.close()
    _, stderr = proc.communicate(timeout=120)  # 5 million samples would take many minutes
    assert proc.returncode == 1 and stderr == ""  # as every click command ends on a broken pipe


def test_sigterm_stops_sample_as_ctrl_c_does(trained_run):
    proc = subprocess.Popen(makemore("sample", "--run", trained_run, "-n", 5_000_000), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdout.readline()  # sampling is under way
    proc.terminate()
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and stderr.strip().splitlines()[-1] == "interrupted", stderr


def test_resume_and_a_sweep_report_write_no_file_through_a_link(trained_run, tmp_path, outside):
    copy = tmp_path / "tiny"
    shutil.copytree(trained_run, copy)
    (copy / "samples.txt").unlink()
    (copy / "samples.txt").symlink_to(outside)
    before = (copy / "last.pt").read_bytes()
    assert_user_error(run("train", "--resume", "--name", "tiny", "--out-dir", tmp_path, "--max-steps", 400),
                      "samples.txt is a symbolic link")  # before a step is trained
    assert (copy / "last.pt").read_bytes() == before and outside.read_text() == "my own notes\n"

    sweeps = tmp_path / "sweeps"
    result = run("sweep", "--out-dir", sweeps, "--name", "s", "--trials", 1, "--param", "lr=0.01",
                 *tiny_args(max_steps=20, eval_interval=10))
    assert result.exit_code == 0, result.output
    (sweeps / "s" / "results.csv").unlink()
    (sweeps / "s" / "results.csv").symlink_to(outside)
    assert_user_error(run("sweep", "--out-dir", sweeps, "--name", "s", "--report"), "results.csv is a symbolic link")
    assert outside.read_text() == "my own notes\n"
