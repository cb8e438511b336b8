"""The commands as a user runs them. Bad input lives in test_bad_input_*.py."""
import pytest
import torch
from conftest import assert_user_error, run, tiny_args


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


def test_a_run_trained_in_bf16_on_a_gpu_evaluates_and_samples_on_a_cpu(trained_run, tmp_path):
    import json
    import shutil

    copy = tmp_path / "bf16"
    shutil.copytree(trained_run, copy)
    config = json.loads((copy / "config.json").read_text())
    config["train"]["precision"] = "bf16"  # as `makemore train --precision bf16` on CUDA records it
    (copy / "config.json").write_text(json.dumps(config))
    for args in (["eval", "--run", copy, "--device", "cpu"], ["sample", "--run", copy, "-n", 2, "--device", "cpu"]):
        assert run(*args).exit_code == 0, run(*args).output
    assert (
        run("eval", "--run", copy, "--device", "cpu").stdout
        == run("eval", "--run", trained_run, "--device", "cpu").stdout
    )


def test_temperature_zero_always_takes_the_likeliest_character(trained_run):
    import torch

    from makemore.runs import Run
    from makemore.tokenizer import BOUNDARY

    result = run("sample", "--run", trained_run, "-n", 3, "--temperature", 0, "--prefix", "a")
    assert result.exit_code == 0, result.output
    samples = result.stdout.splitlines()
    run_ = Run.open(trained_run)
    model, _ = run_.load_model("best", "cpu")
    idx = [BOUNDARY, *run_.tokenizer.encode("a")]
    with torch.no_grad():
        while idx[-1] != BOUNDARY and len(idx) < 2 + 64:  # the full forward pass, a character at a time
            idx.append(int(model(torch.tensor([idx]))[0][0, -1].argmax()))
    assert samples == ["a" + run_.tokenizer.decode([i for i in idx[2:] if i != BOUNDARY])] * 3


def test_unique_samples_are_not_in_the_training_split(trained_run):
    from makemore.data import load_corpus
    from makemore.runs import Run

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
    assert (
        "resumed" in result.output
        and "at step 100 (best at step 100)" in result.output
        and "after 200 steps" in result.output
    )


def test_a_run_samples_after_its_data_is_gone(tmp_path, words_file):
    data = tmp_path / "moved.txt"
    data.write_text(words_file.read_text(encoding="utf-8"), encoding="utf-8")
    for name in ("w", "w2"):
        result = run("train", "--data", data, "--out-dir", tmp_path, "--name", name,
                     *tiny_args(max_steps=20, eval_interval=10))
        assert result.exit_code == 0, result.output
    data.unlink()  # the run directory alone is enough to sample; counting novel samples needs the data
    result = run("sample", "--run", tmp_path / "w", "-n", 4, "--seed", 0)
    assert result.exit_code == 0, result.output
    assert (
        len(result.stdout.splitlines()) == 4
        and "novel: not counted" in result.stderr
        and "does not exist" in result.stderr
    )
    assert_user_error(run("sample", "--run", tmp_path / "w", "--unique"), "--unique needs the run's training data",
                      "put the data back")
    # a mixture samples without it too
    result = run("sample", "--run", tmp_path / "w", "--run", tmp_path / "w2", "-n", 4)
    assert result.exit_code == 0 and len(result.stdout.splitlines()) == 4, result.output
    assert_user_error(run("sample", "--run", tmp_path / "w", "--run", tmp_path / "w2", "--fit-weights"),
                      f"cannot read the val split of {tmp_path / 'w'} here", "does not exist", "put the data back")
    assert_user_error(run("eval", "--run", tmp_path / "w"), f"cannot read the test split of {tmp_path / 'w'} here")


def test_a_run_trained_on_a_relative_path_reads_its_data_from_any_folder(tmp_path, words_file, monkeypatch):
    monkeypatch.chdir(words_file.parent)
    result = run(
        "train",
        "--data",
        words_file.name,
        "--out-dir",
        "runs",
        "--name",
        "w",
        *tiny_args(max_steps=20, eval_interval=10),
    )
    assert result.exit_code == 0, result.output
    here = run("eval", "--run", "runs/w", "--split", "val")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    there = run("eval", "--run", tmp_path / "runs" / "w", "--split", "val")
    assert there.exit_code == 0, there.output
    assert there.stdout.split(",")[0] == here.stdout.split(",")[0] and "loss" in there.stdout


def test_train_on_prose(tmp_path, prose_file):
    result = run("train", "--data", prose_file, "--out-dir", tmp_path, "--name", "p",
                 *tiny_args(max_steps=60, seq_len=32))
    assert result.exit_code == 0, result.output
    assert "read as stream" in result.output and "bits" not in result.output
    result = run("sample", "--run", tmp_path / "p", "-n", 2, "--max-len", 40, "--prefix", "To", "--seed", 0)
    assert result.exit_code == 0 and result.stdout.startswith("To")
    assert_user_error(run("sample", "--run", tmp_path / "p", "--unique"), "--unique is for line corpora")
    from makemore.data import load_corpus
    from makemore.runs import Run

    (tmp_path / "test.txt").write_text(str(load_corpus(Run.open(tmp_path / "p").data_config, log=lambda _: None).test),
                                       encoding="utf-8")
    split, mine = (run("eval", "--run", tmp_path / "p"),
                   run("eval", "--run", tmp_path / "p", "--data", tmp_path / "test.txt"))
    assert split.stdout.split(" loss ")[1] == mine.stdout.split(" loss ")[1]  # prose is scored as its test split is


def test_lstm_trains_on_prose_and_samples_with_a_prefix(tmp_path, prose_file):
    result = run("train", "--model", "lstm", "--data", prose_file, "--out-dir", tmp_path, "--name", "l",
                 *tiny_args(max_steps=60, seq_len=32))
    assert result.exit_code == 0, result.output
    result = run("sample", "--run", tmp_path / "l", "-n", 3, "--max-len", 30, "--prefix", "Whether", "--seed", 0)
    assert result.exit_code == 0, result.output
    assert result.stdout.count("Whether") >= 3
    again = run("sample", "--run", tmp_path / "l", "-n", 3, "--max-len", 30, "--prompt", "Whether", "--seed", 0)
    assert again.stdout == result.stdout  # --prompt, the word other tools use, is --prefix


def test_transformer_on_prose_reads_at_most_its_block(tmp_path, prose_file):
    args = ["train", "--model", "transformer", "--data", prose_file, "--out-dir", tmp_path]
    result = run(
        *args, "--name", "t", "--block-size", 48, *tiny_args(max_steps=40, eval_interval=20, seq_len=32, n_hidden=None)
    )
    assert result.exit_code == 0, result.output
    result = run("sample", "--run", tmp_path / "t", "-n", 2, "--max-len", 100, "--seed", 0)  # longer than the block
    assert result.exit_code == 0, result.output
    result = run(*args, "--name", "t2", "--block-size", 16, "--seq-len", 32,
                 *tiny_args(max_steps=20, eval_interval=10, n_hidden=None))
    assert result.exit_code == 0, result.output  # a sequence is cut to what the block reads, and the run says so
    assert "sequences of 16 characters, all that --block-size 16 reads (pass --block-size 32" in result.output
    assert run("eval", "--run", tmp_path / "t2").exit_code == 0  # eval cuts them alike
    from makemore.config import DataConfig
    from makemore.runs import check_same_run

    # the run records the --seq-len asked for, so compare and transfer read it back as made with it
    check_same_run(tmp_path / "t2", "transformer", {"block_size": 16}, DataConfig(data=str(prose_file), seq_len=32), {})


def test_default_run_names_do_not_collide(tmp_path, words_file):
    for _ in range(2):
        result = run("train", "--data", words_file, "--out-dir", tmp_path, *tiny_args(max_steps=20, eval_interval=10))
        assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["mlp-words", "mlp-words-2"]


def test_help_gives_the_training_defaults_that_each_model_brings():
    import re

    def option_help(command, option):
        text = " ".join(run(command, "--help").stdout.split())
        return re.search(rf" {option} [A-Z]+ (.*?) --[a-z]", text).group(1)

    assert option_help("train", "--lr").endswith("[default: 0.01; wavenet: 0.005; lstm, gru, rnn, transformer, "
                                                 "classifier: 0.003]")
    assert "[default: 30000; bigram: 0; lstm, gru, rnn: 6000; transformer: 40000; classifier: 3000]" in option_help(
        "train", "--max-steps"
    )
    assert option_help("train", "--batch-size").endswith("[default: 64]")
    for command in ("finetune", "transfer"):  # they train classifiers only
        assert option_help(command, "--max-steps").endswith("[default: 3000]")
        assert option_help(command, "--lr").endswith("[default: 0.003]")
    assert option_help("sweep", "--lr") == option_help("train", "--lr")


def test_the_command_list_reads_in_full_in_an_80_column_terminal():
    from makemore.cli import cli

    result = run("--help")  # CliRunner's terminal is 80 columns wide
    listed = result.stdout.split("Commands:\n")[1].splitlines()
    assert [line.split()[0] for line in listed] == sorted(cli.commands)
    assert not [line for line in listed if line.endswith("...")]


def test_help_lists_each_configs_options_under_its_heading():
    def sections(command):
        out, heading = {}, None
        for line in run(command, "--help").stdout.splitlines():
            if line.endswith("options:") or line == "Options:":
                heading = line[:-1]
            elif heading and line.startswith("  -"):
                out.setdefault(heading, []).append(next(w.strip(",") for w in line.split() if w.startswith("--")))
            elif heading and not line.startswith(" "):
                heading = None
        return out

    train = sections("train")
    assert list(train) == ["Options", "Model options", "Data options", "Training options"]
    assert {"--model", "--resume", "--help"} <= set(train["Options"])
    assert {"--n-hidden", "--n-head", "--pooling"} <= set(train["Model options"])
    assert {"--data", "--encoding", "--split-seed"} <= set(train["Data options"])
    assert {"--lr", "--max-steps", "--seed", "--device"} <= set(train["Training options"])
    assert list(sections("finetune")) == ["Options", "Classifier options", "Data options", "Training options"]
    assert list(sections("sweep")) == ["Options", "Sweep options", "Model options", "Data options", "Training options"]
    assert list(sections("sample")) == ["Options"]


def test_eval_scores_a_file_of_the_users_as_it_scores_a_split(tmp_path, trained_run):
    from makemore.data import load_corpus
    from makemore.runs import Run

    def loss(result):
        assert result.exit_code == 0, result.output
        return float(result.stdout.split(" loss ")[1].split()[0])

    test_items = load_corpus(Run.open(trained_run).data_config, log=lambda _: None).test
    mine = tmp_path / "mine.txt"
    mine.write_text("\n".join(reversed(test_items)) + "\n", encoding="utf-8")
    result = run("eval", "--run", trained_run, "--data", mine)
    assert result.stdout.startswith(f"{mine} "
                                    "loss ") and f"{sum(len(i) + 1 for i in test_items):,} characters" in result.stdout
    assert loss(result) == pytest.approx(loss(run("eval", "--run", trained_run)), abs=1e-4)
    latin = tmp_path / "latin.txt"
    latin.write_bytes("\n".join(test_items).encode("latin-1"))
    assert loss(run("eval", "--run", trained_run, "--data", latin, "--encoding", "latin-1")) == pytest.approx(
        loss(result), abs=1e-4
    )


def test_compare_writes_a_table_and_a_chart(tmp_path):
    out = tmp_path / "cmp"
    result = run("compare", "--models", "bigram,mlp", "--max-steps", 30, "--out-dir", out, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert {"compare.csv", "compare.md", "compare.png"} <= {p.name for p in out.iterdir()}
    rows = (out / "compare.csv").read_text().splitlines()
    assert rows[0].startswith("model,parameters,train_loss") and [r.split(",")[0] for r in rows[1:]] == [
        "bigram",
        "mlp",
    ]
    assert [r.split(",")[5] for r in rows[1:]] == ["0", "30"]  # the counted bigram takes no steps of the budget
    again = run("compare", "--models", "bigram,mlp,mlp", "--max-steps", 30, "--out-dir", out, "--device", "cpu")
    assert again.output.count("done "
                              "before") == 2  # finished runs are read back, not retrained; a model named twice is one
    assert (out / "compare.csv").read_text().splitlines() == rows
    before = (out / "mlp" / "metrics.json").read_bytes()
    other = run("compare", "--models", "mlp", "--max-steps", 40, "--out-dir", out, "--device", "cpu")
    assert other.exit_code == 2 and "max_steps 30 (asked: 40)" in other.stderr  # never a run made another way
    assert (out / "mlp" / "metrics.json").read_bytes() == before
    assert run("compare", "--models", "gpt9").exit_code == 2
    missing = run("compare", "--data", tmp_path / "none.txt", "--out-dir",
                  tmp_path / "cmp2")  # told before any model trains
    assert_user_error(missing, "none.txt does not exist")
    assert "bigram: training" not in missing.output and not (tmp_path / "cmp2").exists()


def test_compare_refuses_a_finished_run_whose_data_has_changed(tmp_path, words_file):
    args = ["compare", "--models", "bigram", "--data", words_file, "--out-dir", tmp_path / "cmp"]
    assert run(*args).exit_code == 0
    words_file.write_text(words_file.read_text(encoding="utf-8") + "kalomira\n", encoding="utf-8")
    before = (tmp_path / "cmp" / "compare.csv").read_bytes()
    assert_user_error(run(*args), f"the data of {tmp_path / 'cmp' / 'bigram'} ({words_file}) has changed since the run "
                                  "was trained")
    assert (tmp_path / "cmp" / "compare.csv").read_bytes() == before  # its table is not rewritten from stale figures


def loss_of(line):
    return float(line.split(" loss ")[1].split()[0])


def test_eval_averages_several_language_models(tmp_path, words_file, prose_file):
    import math

    import torch

    from makemore.data import load_corpus
    from makemore.runs import Run

    for model, name in (("mlp", "m"), ("lstm", "l"), ("bigram", "b")):
        result = run("train", "--model", model, "--data", words_file, "--out-dir", tmp_path, "--name", name,
                     *(tiny_args(max_steps=60, eval_interval=30) if model != "bigram" else ["--device", "cpu"]))
        assert result.exit_code == 0, result.output
    paths = [tmp_path / name for name in "mlb"]
    result = run("eval", *[a for p in paths for a in ("--run", p)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    for line, path in zip(lines, paths):  # each member's own figure first, as it scores alone
        assert line.startswith(f"{path}: test loss ")
        assert loss_of(line) == pytest.approx(loss_of(run("eval", "--run", path).stdout), abs=1e-4)

    # the average, computed here without the code under test: each character's mean probability
    probs = []
    for path in paths:
        r = Run.open(path)
        model, _ = r.load_model()
        model.eval()
        items = load_corpus(r.data_config, log=lambda _: None).test
        with torch.no_grad():
            per_item = []
            for item in items:
                ids = r.tokenizer.encode(item)
                logits, _ = model(torch.tensor([[0, *ids]]))
                per_item.append(logits[0].softmax(-1)[torch.arange(len(ids) + 1), torch.tensor([*ids, 0])])
            probs.append(torch.cat(per_item).double())
    mean = -torch.stack(probs).mean(0).log().mean().item()
    n = len(probs[0])
    assert lines[3] == (f"test loss {mean:.4f} nats/char ({mean / math.log(2):.4f} bits/char), {n:,} characters, "
                        "the average of 3 runs (best.pt)")
    assert mean < sum(loss_of(line) for line in lines[:3]) / 3  # the log of a mean is above the mean of the logs

    for model, name in (
        ("mlp", "pm"),
        ("lstm", "pl"),
    ):  # prose: models that read other contexts score the same characters
        result = run("train", "--model", model, "--data", prose_file, "--out-dir", tmp_path, "--name", name,
                     *tiny_args(max_steps=30, eval_interval=30, seq_len=32))
        assert result.exit_code == 0, result.output
    result = run("eval", "--run", tmp_path / "pm", "--run", tmp_path / "pl", "--split", "val")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[2].startswith("val loss ") and "the average of 2 runs" in result.stdout



def test_sample_from_several_language_models(tmp_path, words_file):
    import torch

    from makemore.runs import Run
    from makemore.sampling import Mixture
    from makemore.tokenizer import BOUNDARY

    for model, name in (("mlp", "m"), ("lstm", "l")):
        result = run("train", "--model", model, "--data", words_file, "--out-dir", tmp_path, "--name", name,
                     *tiny_args(max_steps=60, eval_interval=30))
        assert result.exit_code == 0, result.output
    paths = [tmp_path / "m", tmp_path / "l"]
    runs = [Run.open(p) for p in paths]
    models = [r.load_model()[0].eval() for r in runs]
    tokenizer = runs[0].tokenizer

    def mean_probs(idx, weights=(0.5, 0.5)):  # computed here without the code under test: whole forward passes
        with torch.no_grad():
            return sum(w * m(torch.tensor([idx]))[0][0, -1].softmax(-1) for w, m in zip(weights, models))

    # each step of the mixture, carrying each model's own state (a window, a recurrent state), is the weighted mean
    idx = [BOUNDARY, *tokenizer.encode("marvelous")]
    mixture = Mixture(models, [0.25, 0.75])
    logits, state = mixture.start(torch.tensor([idx[:1]]))
    for t in range(1, len(idx)):
        assert torch.allclose(logits[0].exp(), mean_probs(idx[:t], (0.25, 0.75)), atol=1e-6)
        logits, state = mixture.step(state, torch.tensor([[idx[t]]]))

    # greedy decoding from the CLI takes the likeliest character of the mean, step by step
    result = run("sample", "--run", paths[0], "--run", paths[1], "-n", 2, "--temperature", 0, "--prefix", "a")
    assert result.exit_code == 0, result.output
    idx = [BOUNDARY, *tokenizer.encode("a")]
    while idx[-1] != BOUNDARY and len(idx) < 2 + 64:
        idx.append(int(mean_probs(idx).argmax()))
    assert result.stdout.splitlines() == ["a" + tokenizer.decode([i for i in idx[2:] if i != BOUNDARY])] * 2
    assert "not in the runs' training splits" in result.stderr

    result = run("sample", "--run", paths[0], "--run", paths[1], "-n", 5, "--seed", 3, "--fit-weights")
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 5  # the weights go to stderr, the samples alone to stdout
    fitted = result.stderr.splitlines()[0]
    assert fitted.startswith("weights fitted on the val split: ")
    weights = [float(part.split()[-1]) for part in fitted.split(": ", 1)[1].split(", ")]
    assert len(weights) == 2 and sum(weights) == pytest.approx(1, abs=2e-3)
    assert (
        result.stdout
        == run("sample", "--run", paths[0], "--run", paths[1], "-n", 5, "--seed", 3, "--fit-weights").stdout
    )


def test_eval_writes_the_score_of_each_item(tmp_path, words_file):
    import csv

    from makemore.data import load_corpus
    from makemore.runs import Run

    result = run(
        "train", "--data", words_file, "--out-dir", tmp_path, "--name", "w", *tiny_args(max_steps=40, eval_interval=20)
    )
    assert result.exit_code == 0, result.output
    alone = run("eval", "--run", tmp_path / "w")
    result = run("eval", "--run", tmp_path / "w", "--items", tmp_path / "items.tsv")
    assert result.exit_code == 0, result.output
    assert loss_of(result.stdout) == pytest.approx(loss_of(alone.stdout), abs=1e-4)  # the same figure either way
    rows = list(csv.reader((tmp_path / "items.tsv").read_text(encoding="utf-8").splitlines(), delimiter="\t"))
    assert rows[0] == ["item", "characters", "nats", "nats_per_char"]
    test = load_corpus(Run.open(tmp_path / "w").data_config, log=lambda _: None).test
    assert [r[0] for r in rows[1:]] == list(test)  # every test item once, in the split's order
    assert all(int(r[1]) == len(r[0]) + 1 for r in rows[1:])  # its characters and its end
    assert all(float(r[3]) == pytest.approx(float(r[2]) / int(r[1]), abs=1e-4) for r in rows[1:])
    total = sum(float(r[2]) for r in rows[1:]) / sum(int(r[1]) for r in rows[1:])
    assert total == pytest.approx(loss_of(result.stdout), abs=1e-3)
    assert f"items: {len(test):,} rows written to {tmp_path / 'items.tsv'}" in result.stderr


def test_mixture_weights_are_the_ones_that_score_best():
    from makemore.evaluate import mixture_weights

    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(500, generator=g), torch.rand(500, generator=g)  # two models' probabilities of what happened
    w = mixture_weights([a.log(), b.log()])
    assert sum(w) == pytest.approx(1)
    grid = torch.linspace(0.001, 0.999, 999)
    scores = [(x * a + (1 - x) * b).log().mean().item() for x in grid]
    best = grid[max(range(len(grid)), key=scores.__getitem__)].item()
    assert w[0] == pytest.approx(best, abs=2e-3)
    assert (
        mixture_weights([torch.full((9,), 0.5).log(), torch.full((9,), 0.25).log()])[0] > 0.99
    )  # the better one, all of it
    half = torch.tensor([0.8, 0.2] * 5)
    assert mixture_weights([half.log(), half.flip(0).log()]) == pytest.approx([0.5, 0.5], abs=1e-6)


def test_eval_fits_mixture_weights_on_the_val_split(tmp_path, words_file):
    from makemore.data import load_corpus
    from makemore.runs import Run

    for model, name in (("mlp", "m"), ("bigram", "b")):
        result = run("train", "--model", model, "--data", words_file, "--out-dir", tmp_path, "--name", name,
                     *(tiny_args(max_steps=60, eval_interval=30) if model != "bigram" else ["--device", "cpu"]))
        assert result.exit_code == 0, result.output
    both = ["--run", tmp_path / "m", "--run", tmp_path / "b"]
    result = run("eval", *both, "--fit-weights")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"weights fitted on the val split: {tmp_path / 'm'} ")
    weights = [float(w) for w in lines[0].replace(",", "").split()[7::2]]
    assert len(weights) == 2 and sum(weights) == pytest.approx(1, abs=2e-3)
    assert lines[3].startswith("test loss ") and lines[3].endswith("the weighted average of 2 runs (best.pt)")
    # scored on the val split's own items (as --data), the fitted weights beat equal ones
    val = load_corpus(Run.open(tmp_path / "m").data_config, log=lambda _: None).val
    (tmp_path / "val.txt").write_text("\n".join(val) + "\n", encoding="utf-8")
    fitted = run("eval", *both, "--fit-weights", "--data", tmp_path / "val.txt").stdout.splitlines()[-1]
    equal = run("eval", *both, "--data", tmp_path / "val.txt").stdout.splitlines()[-1]
    assert loss_of(fitted) <= loss_of(equal)

    assert_user_error(run("eval", "--run", tmp_path / "m", "--fit-weights"), "pass two --run or more")
    assert_user_error(
        run("eval", *both, "--fit-weights", "--split", "val"), "fits the weights on the val split", "--split test"
    )


def test_min_char_count_reads_rare_and_new_characters_as_one_id(tmp_path, words_file, prose_file, labeled_folder):
    from makemore.runs import Run

    words = words_file.read_text(encoding="utf-8").split()
    rare = tmp_path / "rare.txt"  # a letter in two words, fewer than --min-char-count in any split
    rare.write_text("\n".join(words + ["kaß", "ßlo"]) + "\n", encoding="utf-8")
    result = run(
        "train", "--data", rare, "--min-char-count", 3, "--out-dir", tmp_path, "--name", "w", *tiny_args(max_steps=60)
    )
    assert result.exit_code == 0, result.output
    assert (
        "data: 13 characters seen at least 3 time(s) in the train split; the other 1 and any new one" in result.output
    )
    assert_user_error(run("train", "--data", rare, "--min-char-count", 10**6, "--out-dir", tmp_path, "--name", "none"),
                      "--min-char-count 1000000 leaves no character", "pass a smaller one")
    tok = Run.open(tmp_path / "w").tokenizer
    assert tok.unk and "ß" not in tok.chars and tok.vocab_size == len(tok.chars) + 2
    new = tmp_path / "new.txt"
    new.write_text("kaß\nquixote\n", encoding="utf-8")
    scored = run("eval", "--run", tmp_path / "w", "--data", new)
    assert scored.exit_code == 0 and "new.txt loss" in scored.stdout, scored.output  # not an unknown-character error
    samples = run("sample", "--run", tmp_path / "w", "-n", 200, "--temperature", 3, "--seed", 0, "--prefix", "ß")
    assert samples.exit_code == 0, samples.output
    assert samples.stdout.count("ß") == 200 and "\ufffd" not in samples.stdout  # the prefix kept, the id never written
    # prose: a character of the val split that the train split lacks is read as the unknown id
    prose = tmp_path / "prose2.txt"
    prose.write_text(prose_file.read_text(encoding="utf-8") + "Ω" * 5, encoding="utf-8")
    result = run(
        "train",
        "--model",
        "lstm",
        "--data",
        prose,
        "--min-char-count",
        1,
        "--out-dir",
        tmp_path,
        "--name",
        "p",
        *tiny_args(max_steps=30, seq_len=32, val_frac=0.2),
    )
    assert result.exit_code == 0, result.output
    assert "Ω" not in Run.open(tmp_path / "p").tokenizer.chars
    # a classifier finetuned from such a model reads characters its tokenizer lacks, and says so
    lm = run("train", "--model", "lstm", "--data", labeled_folder, "--min-char-count", 1, "--out-dir", tmp_path,
             "--name", "lm", *tiny_args(max_steps=30, eval_interval=30))
    assert lm.exit_code == 0, lm.output
    other = tmp_path / "other.tsv"
    other.write_text("".join(f"{'AB'[i % 2]}\t{'ab'[i % 2] * (1 + i // 2)}\n" for i in range(40)), encoding="utf-8")
    clf = run("finetune", "--from", tmp_path / "lm", "--data", other, "--out-dir", tmp_path, "--name", "c",
              "--max-steps", 10, "--eval-interval", 10, "--device", "cpu")
    assert clf.exit_code == 0, clf.output
    assert "1 character(s) of the labeled data are unknown to the tokenizer" in clf.output
    labels = run("classify", "--run", tmp_path / "c", "bbbΩ")
    assert labels.exit_code == 0 and labels.stdout.startswith("bbbΩ"), labels.output
