"""`makemore sample` and `makemore eval` fed bad input or damaged runs: one line, exit 2, no traceback,
and the run directory unharmed."""
import json
import pickle
import shutil

import pytest
import torch
from conftest import assert_user_error, run, snapshot, tiny_args


@pytest.fixture
def damaged(trained_run, tmp_path):
    """A copy of the trained run, free to break."""
    copy = tmp_path / "copy"
    shutil.copytree(trained_run, copy)
    return copy


def test_eval_of_a_file_the_model_cannot_read(trained_run, tmp_path):
    before = snapshot(trained_run)
    (tmp_path / "caps.txt").write_text("emma\nZoe\n", encoding="utf-8")
    assert_user_error(run("eval", "--run", trained_run, "--data", tmp_path / "caps.txt"),
                      f"'Z' (U+005A LATIN CAPITAL LETTER Z) in data {tmp_path / 'caps.txt'} is not in this model's "
                      "vocabulary")
    (tmp_path / "latin.txt").write_bytes("anaïs\n".encode("latin-1"))
    assert_user_error(run("eval", "--run", trained_run, "--data", tmp_path / "latin.txt"), "not valid utf-8",
                      "--encoding")
    assert_user_error(run("eval", "--run", trained_run, "--data", tmp_path / "none.txt"), "does not exist")
    assert_user_error(run("eval", "--run", trained_run, "--data", tmp_path / "caps.txt", "--split", "val"),
                      "pass one of them")
    assert_user_error(run("eval", "--run", trained_run, "--encoding", "latin-1"),
                      "--encoding is the encoding of --data")
    assert snapshot(trained_run) == before


def test_eval_of_an_item_longer_than_a_transformer_reads(tmp_path, words_file):
    result = run("train", "--model", "transformer", "--data", words_file, "--block-size", 12, "--out-dir", tmp_path,
                 "--name", "t", *tiny_args(max_steps=4, eval_interval=2, n_hidden=None))
    assert result.exit_code == 0, result.output
    (tmp_path / "long.txt").write_text("kalo\n" + "ka" * 10 + "\n", encoding="utf-8")
    assert_user_error(run("eval", "--run", tmp_path / "t", "--data", tmp_path / "long.txt"),
                      f"data {tmp_path / 'long.txt'} has an item of 20 characters, more than the 11 that --block-size "
                      "12 reads",
                      "leave that item out")


@pytest.mark.parametrize("command", ["sample", "eval"])
def test_a_directory_that_is_not_a_run(tmp_path, command):
    assert_user_error(run(command, "--run", tmp_path), "not a makemore run", "--run runs/<name>")
    assert_user_error(run(command, "--run", tmp_path / "missing"), "not a makemore run")


def test_prefix_with_a_character_outside_the_vocabulary(trained_run):
    before = snapshot(trained_run)
    assert_user_error(
        run("sample", "--run", trained_run, "--prefix", "Zoë"), "'Z' (U+005A LATIN CAPITAL LETTER Z)", "vocabulary"
    )
    assert_user_error(run("sample", "--run", trained_run, "--prefix", "a\tb"), "U+0009 CONTROL CHARACTER")
    assert snapshot(trained_run) == before


@pytest.mark.parametrize("args,fragment", [
    (["--temperature", -1], "--temperature must be 0 (the likeliest character) or a finite number above it"),
    (["--temperature", "nan"], "--temperature must be 0 (the likeliest character) or a finite number above it"),
    (["--temperature", "inf"], "--temperature must be 0 (the likeliest character) or a finite number above it"),
    (["--temperature", 0, "--unique"], "at --temperature 0 every draw is the same"),
    (["--top-k", 0], "--top-k must be positive"),
    (["-n", 0], "-n must be positive"),
    (["--max-len", 0], "--max-len must be positive"),
    (["--split", "dev"], "--split"),
    (["--checkpoint", "final"], "--checkpoint"),
    (["--bogus"], "No such option"),
])
def test_sampling_and_eval_options_are_checked(trained_run, args, fragment):
    command = "eval" if args[0] == "--split" else "sample"
    assert_user_error(run(command, "--run", trained_run, *args), fragment)


@pytest.mark.parametrize("command", ["sample", "eval"])
def test_truncated_checkpoint(damaged, command):
    data = (damaged / "best.pt").read_bytes()
    (damaged / "best.pt").write_bytes(data[: len(data) // 2])
    assert_user_error(run(command, "--run", damaged), "is damaged or not a checkpoint", "--checkpoint")
    assert run(command, "--run", damaged, "--checkpoint", "last").exit_code == 0


def test_a_missing_checkpoint(damaged):
    (damaged / "best.pt").unlink()
    assert_user_error(run("sample", "--run", damaged), "does not exist", "--checkpoint last")


class Payload:
    def __reduce__(self):
        import os

        return (os.system, ("touch PWNED",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("command", ["sample", "eval"])
def test_a_pickle_with_a_code_payload_is_refused_and_never_runs(damaged, tmp_path, monkeypatch, command):
    torch.save({"format": 1, "model": Payload()}, damaged / "best.pt")  # in torch's own zip archive
    monkeypatch.chdir(tmp_path)
    result = run(command, "--run", damaged)
    assert_user_error(result, "was refused", "only checkpoints that makemore wrote")
    assert "weights_only" not in result.stderr  # torch's advice to load it unsafely is not passed on
    with open(damaged / "best.pt", "wb") as f:  # a bare pickle: not even read
        pickle.dump({"format": 1, "model": Payload()}, f)
    assert_user_error(run(command, "--run", damaged), "is damaged or not a checkpoint")
    assert not (tmp_path / "PWNED").exists()


def test_a_checkpoint_from_a_future_format(damaged):
    ckpt = torch.load(damaged / "best.pt", weights_only=True)
    torch.save({**ckpt, "format": 99}, damaged / "best.pt")
    assert_user_error(run("sample", "--run", damaged), "format 99", "upgrade makemore")


def test_a_checkpoint_that_does_not_match_the_config(damaged):
    config = json.loads((damaged / "config.json").read_text())
    config["model_config"]["n_hidden"] += 1
    (damaged / "config.json").write_text(json.dumps(config))
    assert_user_error(run("sample", "--run", damaged), "does not match the model in config.json")


def test_a_config_from_a_future_format(damaged):
    config = json.loads((damaged / "config.json").read_text())
    (damaged / "config.json").write_text(json.dumps({**config, "format": 7}))
    assert_user_error(run("eval", "--run", damaged), "newer makemore", "upgrade makemore")


@pytest.mark.parametrize("edit,fragment", [
    (lambda c: c["model_config"].update(n_hidden="many"), "--n-hidden must be a number, got 'many'"),
    (lambda c: c["model_config"].update(n_hidden=-3), "--n-hidden must be positive"),
    (lambda c: c["model_config"].update(surprise=1), "unknown fields"),
    (lambda c: c.update(model="gpt9"), "unknown model 'gpt9'"),
    (lambda c: c.update(train=[1, 2]), "not an object"),
])
def test_a_tampered_config_is_refused(damaged, edit, fragment):
    config = json.loads((damaged / "config.json").read_text())
    edit(config)
    (damaged / "config.json").write_text(json.dumps(config))
    assert_user_error(run("sample", "--run", damaged), fragment)


def test_a_config_that_is_not_json(damaged):
    (damaged / "config.json").write_text("{not json")
    assert_user_error(run("eval", "--run", damaged), "not valid JSON")


@pytest.mark.parametrize("text,fragment", [("{oops", "not valid JSON"),
                                           ('{"format": 1, "chars": ["ab", 3]}', "not a makemore tokenizer")])
def test_a_damaged_tokenizer_is_refused(damaged, text, fragment):
    (damaged / "tokenizer.json").write_text(text)
    assert_user_error(run("sample", "--run", damaged), fragment)


def test_averaged_language_models_bad_input(trained_run, tmp_path, words_file):
    result = run(
        "train",
        "--data",
        words_file,
        "--out-dir",
        tmp_path,
        "--name",
        "words",
        *tiny_args(max_steps=4, eval_interval=2),
    )
    assert result.exit_code == 0, result.output
    assert_user_error(run("eval", "--run", trained_run, "--run", tmp_path / "words"), "know other characters",
                      "trained on the same data")
    assert_user_error(run("eval", "--run", trained_run, "--run", trained_run), "is passed twice")
    for name, change, fragments in [
        ("back", {"reverse": True},
         [f"{tmp_path / 'back'} reads right to left (--reverse true) and {trained_run} left to right"]),
        ("split", {"split_seed": 7}, ["split their data differently", "their test splits differ", "--split-seed"]),
        ("prose", {"kind": "stream"}, [f"{trained_run} reads lines and {tmp_path / 'prose'} prose", "(--kind)"]),
    ]:
        other = tmp_path / name
        shutil.copytree(trained_run, other)
        config = json.loads((other / "config.json").read_text())
        config["data"].update(change)
        del config["data_sha256"]  # a run trained with these options would record the digest of its own splits
        (other / "config.json").write_text(json.dumps(config))
        before = snapshot(other)
        assert_user_error(run("eval", "--run", trained_run, "--run", other), *fragments)
        if name != "split":  # sampling reads no split
            assert_user_error(run("sample", "--run", trained_run, "--run", other), *fragments)
        assert snapshot(other) == before
    assert_user_error(run("sample", "--run", trained_run, "--run", tmp_path / "words"), "know other characters")
    assert_user_error(
        run("sample", "--run", trained_run, "--fit-weights"), "--fit-weights weighs several runs", "two --run"
    )


def test_eval_items_bad_input(trained_run, tmp_path, prose_file):
    before = snapshot(trained_run)
    assert_user_error(run("eval", "--run", trained_run, "--items", tmp_path / "missing" / "items.tsv"),
                      f"the folder {tmp_path / 'missing'} does not exist", "make it")
    assert snapshot(trained_run) == before
    result = run(
        "train",
        "--data",
        prose_file,
        "--out-dir",
        tmp_path,
        "--name",
        "p",
        *tiny_args(max_steps=4, eval_interval=2, seq_len=32),
    )
    assert result.exit_code == 0, result.output
    assert_user_error(run("eval", "--run", tmp_path / "p", "--items", tmp_path / "items.tsv"),
                      "reads prose, which has no items", "drop --items")
    assert not (tmp_path / "items.tsv").exists()


@pytest.mark.parametrize("temperature", [1e-300, 5e-324, 1e-30])
def test_a_temperature_near_zero_is_greedy_decoding(trained_run, temperature):
    greedy = run("sample", "--run", trained_run, "-n", 5, "--temperature", 0, "--prefix", "a")
    tiny = run("sample", "--run", trained_run, "-n", 5, "--temperature", temperature, "--prefix", "a", "--seed", 1)
    assert tiny.exit_code == 0, tiny.output
    assert tiny.stdout == greedy.stdout
