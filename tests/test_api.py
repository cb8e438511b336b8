"""The Python library: a model written here trains, resumes exactly, samples and evaluates; each CLI
command's library call gives the CLI's figures for the same seed."""
import csv
import json
import math
import re
import signal

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY_CLF, TINY_MODEL, TINY_TRAIN, run
from torch import nn

import makemore as mm

QUIET = {"progress": False, "log": lambda _: None}
TRAIN = {**TINY_TRAIN, "max_steps": 120, "eval_interval": 40}


class TinyMLP(nn.Module):
    """A student's MLP, as nn-zero-to-hero part 2 writes it: the last block_size characters' embeddings,
    concatenated, through a tanh layer to the next character's logits."""

    def __init__(self, vocab_size, block_size=3, n_embd=8, n_hidden=48):
        super().__init__()
        self.block_size = block_size
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.hidden = nn.Linear(block_size * n_embd, n_hidden)
        self.out = nn.Linear(n_hidden, vocab_size)
        self.calls = 0  # forward passes in training, to interrupt one

    def forward(self, idx, targets=None):
        self.calls += self.training
        windows = F.pad(idx, (self.block_size - 1, 0)).unfold(1, self.block_size, 1)  # (B, T, block_size)
        logits = self.out(torch.tanh(self.hidden(self.wte(windows).flatten(2))))  # (B, T, vocab_size)
        loss = None if targets is None else F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-1)
        return logits, loss


class Interrupting(TinyMLP):
    """Sends itself Ctrl-C in its 50th training step, as a user would in a notebook."""

    def forward(self, idx, targets=None):
        if self.training and self.calls == 49:
            signal.raise_signal(signal.SIGINT)
        return super().forward(idx, targets)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def tiny_mlp(data, cls=TinyMLP):
    torch.manual_seed(0)  # the user's model is built, and so initialised, by the user's code
    return cls(data.vocab_size)


def test_a_model_written_here_trains_resumes_exactly_samples_and_evaluates(tmp_path, words_file):
    data = mm.load_data(words_file)
    assert data.kind == "lines" and data.vocab_size == len(set("".join(data.train + data.val + data.test))) + 1
    straight = mm.train(tiny_mlp(data), data, out_dir=tmp_path, name="straight", **TRAIN, **QUIET)
    assert straight.model_name == "custom" and straight.metrics["steps"] == 120
    assert straight.metrics["val_loss"] < math.log(data.vocab_size) - 0.5  # it learned
    assert {"train_loss", "val_loss", "test_loss"} <= straight.metrics.keys()
    assert (tmp_path / "straight" / "samples.txt").exists() and list((tmp_path / "straight").glob("events.*"))

    stopped = mm.train(tiny_mlp(data, Interrupting), data, out_dir=tmp_path, name="stopped", **TRAIN, **QUIET)
    assert stopped.metrics is None  # interrupted: last.pt only
    with pytest.raises(mm.MakemoreError, match=r"a model of your own \(Interrupting.*open_run\(path, model="):
        mm.open_run(tmp_path / "stopped").resume(**QUIET)
    resumed = mm.open_run(tmp_path / "stopped", model=tiny_mlp(data)).resume(**QUIET)
    for split in ("train", "val", "test"):
        assert resumed.metrics[f"{split}_loss"] == pytest.approx(straight.metrics[f"{split}_loss"], abs=1e-5)

    samples = straight.sample(6, seed=3, temperature=0.8, prefix="ka")
    assert len(samples) == 6 and all(s.startswith("ka") for s in samples)
    assert samples == straight.sample(6, seed=3, temperature=0.8, prefix="ka")
    figures = straight.evaluate("test")
    assert figures["loss"] == pytest.approx(straight.metrics["test_loss"], abs=1e-5)
    assert figures["bpc"] == pytest.approx(figures["loss"] / math.log(2))
    history = straight.history()
    assert [step for step, _ in history["loss/val"]] == [40, 80, 120]


def test_open_run_without_the_model_of_its_run_says_how_to_give_it(tmp_path, words_file):
    data = mm.load_data(words_file)
    mm.train(tiny_mlp(data), data, out_dir=tmp_path, name="mine", **{**TRAIN, "max_steps": 10}, **QUIET)
    with pytest.raises(mm.MakemoreError, match=r"TinyMLP, defined in test_api.*open_run\(path, model=TinyMLP\(...\)\)"):
        mm.open_run(tmp_path / "mine").sample(2)
    result = run("sample", "--run", tmp_path / "mine")
    assert result.exit_code == 2 and "a model of your own (TinyMLP" in result.stderr


def test_train_sample_and_eval_give_the_cli_figures(tmp_path, words_file):
    args = ["--data", words_file, "--out-dir", tmp_path, "--model", "mlp"]
    options = {**TINY_MODEL, **TINY_TRAIN}
    assert run("train", *args, "--name", "cli", *[a for k, v in options.items() for a in (f"--{k.replace('_', '-')}",
                                                                                         v)]).exit_code == 0
    lib = mm.train("mlp", mm.load_data(words_file), out_dir=tmp_path, name="lib", **options, **QUIET)
    cli = json.loads((tmp_path / "cli" / "metrics.json").read_text())
    for key in ("train_loss", "val_loss", "test_loss", "steps", "best_step", "parameters"):
        assert lib.metrics[key] == cli[key], key

    printed = run("sample", "--run", tmp_path / "cli", "-n", 5, "--seed", 7, "--temperature", 0.9).stdout
    assert lib.sample(5, seed=7, temperature=0.9) == printed.splitlines()

    printed = run("eval", "--run", tmp_path / "cli", "--split", "val").stdout
    figures = lib.evaluate("val")
    assert printed.startswith(f"val loss {figures['loss']:.4f} nats/char ({figures['bpc']:.4f} bits/char), "
                              f"{figures['characters']:,} characters")
    assert mm.open_run(tmp_path / "cli").evaluate("val") == figures

    rows = {r["run"]: r for r in mm.list_runs(tmp_path)}
    listed = run("runs", tmp_path).stdout
    assert set(rows) == {"cli", "lib"} and all(f"  {rows['cli'][c]}" in listed for c in ("val", "test", "steps"))
    paths = lib.inspect()
    assert [p.name for p in paths] == ["embeddings.png", "activations.png"]


def test_finetune_and_classify_give_the_cli_figures(tmp_path, labeled_folder, lm_run):
    options = {"max_steps": 40, "eval_interval": 20, "batch_size": 32, "warmup_steps": 10, "device": "cpu"}
    assert run("finetune", "--from", lm_run, "--data", labeled_folder, "--out-dir", tmp_path, "--name", "cli",
               *[a for k, v in options.items() for a in (f"--{k.replace('_', '-')}", v)]).exit_code == 0
    lib = mm.finetune(mm.open_run(lm_run), mm.load_data(labeled_folder, kind="labeled"), out_dir=tmp_path,
                      name="lib", **options, **QUIET)
    cli = json.loads((tmp_path / "cli" / "metrics.json").read_text())
    for key in ("val_accuracy", "val_macro_f1", "test_accuracy", "test_loss"):
        assert lib.metrics[key] == cli[key], key
    printed = run("classify", "--run", tmp_path / "cli", "kaku", "rire").stdout.splitlines()
    labelled = lib.classify(["kaku", "rire"])
    assert [f"{item:<4}  " + "  ".join(f"{label} {p:.3f}" for label, p in best) for item, best in labelled] == printed
    figures = lib.evaluate("test")
    assert figures["accuracy"] == pytest.approx(cli["test_accuracy"], abs=1e-6)
    assert figures["items"] == cli["test_items"]
    with pytest.raises(mm.MakemoreError, match="is a classifier; it labels items"):
        lib.sample(3)


def test_compare_lr_find_and_sweep_give_the_cli_figures(tmp_path, words_file):
    run("compare", "--data", words_file, "--models", "bigram,mlp", "--max-steps", 30, "--out-dir", tmp_path / "cli",
        "--device", "cpu")
    rows = mm.compare(["bigram", "mlp"], words_file, max_steps=30, out_dir=tmp_path / "lib", device="cpu",
                      log=lambda _: None)
    cli = read_csv(tmp_path / "cli" / "compare.csv")
    assert [(r["model"], r["val_loss"], r["test_loss"]) for r in rows] == [
        (r["model"], float(r["val_loss"]), float(r["test_loss"])) for r in cli]

    tiny = {**TINY_MODEL, "batch_size": 32, "device": "cpu"}
    printed = run("lr-find", "--data", words_file, "--out-dir", tmp_path / "lr", "--name", "cli", "--steps", 60,
                  *[a for k, v in tiny.items() for a in (f"--{k.replace('_', '-')}", v)]).stdout
    suggested, curve = mm.lr_find("mlp", words_file, steps=60, out_dir=tmp_path / "lr", name="lib", log=lambda _: None,
                                  **tiny)
    assert len(curve) == 60 and (tmp_path / "lr" / "lib.png").exists()
    assert (f"suggested --lr {suggested:.2g}" in printed) if suggested else "no suggestion" in printed
    assert (tmp_path / "lr" / "cli.csv").read_text() == (tmp_path / "lr" / "lib.csv").read_text()

    study = mm.sweep("mlp", mm.load_data(words_file), params={"lr": [0.003, 0.03]}, sampler="grid", trials=2,
                     out_dir=tmp_path / "sweeps", name="s", log=lambda _: None, max_steps=40, eval_interval=20, **tiny)
    assert [r["state"] for r in study.results] == ["complete", "complete"]
    assert study.best["val_loss"] == min(r["val_loss"] for r in study.results)
    assert {p.name for p in study.figures} >= {"loss_vs_params.png", "curves.png"}
    listed = run("sweep", "--name", "s", "--out-dir", tmp_path / "sweeps", "--report").stdout
    assert f"{study.best['val_loss']:.4f}" in listed


def test_transfer_gives_the_cli_figures(tmp_path, labeled_folder):
    options = ["--fractions", "0.5,1", "--seeds", 1, "--encoder", "mlp", "--pretrain-steps", 30, "--max-steps", 20,
               "--eval-interval", 10, *TINY_CLF]
    assert run("transfer", "--data", labeled_folder, "--out-dir", tmp_path / "cli", *options).exit_code == 0
    rows = mm.transfer(labeled_folder, "mlp", fractions=(0.5, 1), seeds=1, pretrain_steps=30, out_dir=tmp_path / "lib",
                       max_steps=20, eval_interval=10, n_embd=8, n_hidden=32, batch_size=32, warmup_steps=10,
                       log_interval=20, device="cpu", log=lambda _: None)
    assert len(rows) == 6 and (tmp_path / "lib" / "transfer.png").exists()  # scratch, pretrained, n-gram baseline
    assert sum(r["init"] == "n-gram baseline" for r in rows) == 2
    same = ["fraction", "labels", "seed", "init", "test_accuracy", "test_macro_f1", "best_step"]
    assert [[r[k] for k in same] for r in read_csv(tmp_path / "cli" / "transfer.csv")] == [
        [r[k] for k in same] for r in read_csv(tmp_path / "lib" / "transfer.csv")]


def test_the_public_names_are_listed_and_documented():
    assert sorted(mm.__all__) == sorted(n for n in dir(mm) if not n.startswith("_") and n in mm.__all__)
    for name in mm.__all__:
        thing = getattr(mm, name)
        assert name == "MODELS" or (thing.__doc__ and len(thing.__doc__.strip()) > 20), name
    with pytest.raises(mm.MakemoreError, match="train mlp has no option n_head"):
        mm.train("mlp", "names", n_head=2)
    with pytest.raises(mm.MakemoreError, match="unknown model 'mpl'"):
        mm.train("mpl", "names")


def test_tensorboard_shows_the_loss_curves_first_and_keeps_units_apart(tmp_path, words_file, labeled_folder):
    lm = mm.train("mlp", words_file, out_dir=tmp_path, name="lm", **TINY_MODEL, **{**TRAIN, "max_steps": 40}, **QUIET)
    groups = sorted({tag.split("/")[0] for tag in lm.history()})
    assert groups == ["loss", "summary", "train_diagnostics"]  # TensorBoard lists its groups in this order
    clf = mm.train("classifier", mm.load_data(labeled_folder), out_dir=tmp_path, name="clf", n_embd=8, n_hidden=32,
                   **{**TRAIN, "max_steps": 20, "eval_interval": 10}, **QUIET)
    tags = clf.history()
    assert "loss_per_item/val" in tags and not any(t.startswith("loss/") for t in tags)
    assert mm.plot_loss(lm).get_ylabel() == "loss (nats per character)"


class TinyLM(nn.Module):
    """A student's language model with the body/head split that finetuning needs: body(idx) gives
    features (B, T, H), head(features) the logits."""

    def __init__(self, vocab_size, n_embd=8, n_hidden=32):
        super().__init__()
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.rnn = nn.GRU(n_embd, n_hidden, batch_first=True)
        self.lm_head = nn.Linear(n_hidden, vocab_size)

    def body(self, idx):
        return self.rnn(self.wte(idx))[0]  # (B, T, n_hidden)

    def head(self, features):
        return self.lm_head(features)  # (B, T, vocab_size)

    def head_parameters(self):
        return list(self.lm_head.parameters())

    def forward(self, idx, targets=None):
        logits = self.head(self.body(idx))
        loss = None if targets is None else F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-1)
        return logits, loss


def test_a_language_model_written_here_is_finetuned_into_a_classifier(tmp_path, labeled_folder):
    data = mm.load_data(labeled_folder, kind="labeled")
    torch.manual_seed(0)
    lm = mm.train(TinyLM(data.vocab_size), data, out_dir=tmp_path, name="lm", **{**TRAIN, "max_steps": 60}, **QUIET)
    with pytest.raises(mm.MakemoreError, match="holds a model of your own .TinyLM.; a classifier reads an item"):
        mm.finetune(tmp_path / "lm", data, out_dir=tmp_path, name="nope", **QUIET)
    clf = mm.finetune(lm, data, out_dir=tmp_path, name="clf", max_steps=40, eval_interval=20, batch_size=32, **QUIET)
    assert clf.metrics["test_accuracy"] > 0.5 and clf.config["model"]["encoder"] == "custom"
    weights = torch.load(tmp_path / "lm" / "best.pt", weights_only=True)["model"]
    body = clf.load_model().encoder.state_dict()
    assert not torch.equal(body["wte.weight"], weights["wte.weight"])  # the body trained on from the language model's
    assert clf.classify(["kaku"])[0][1][0][0] in data.corpus.labels
    again = mm.open_run(tmp_path / "clf", model=TinyLM(data.vocab_size))
    assert again.evaluate("test")["accuracy"] == pytest.approx(clf.metrics["test_accuracy"], abs=1e-6)
    with pytest.raises(mm.MakemoreError, match=r"a model of your own \(TinyLM"):
        mm.open_run(tmp_path / "clf").evaluate("test")


class BrokenContract(TinyMLP):
    """A student's model that breaks the forward contract in one of the ways students do."""

    def __init__(self, vocab_size, mistake):
        super().__init__(vocab_size)
        self.mistake = mistake

    def forward(self, idx, targets=None):
        logits, _ = super().forward(idx)
        flat_logits, flat_targets = logits.flatten(0, 1), None if targets is None else targets.flatten()
        if self.mistake == "tensor":
            return logits
        if self.mistake == "last position":  # (B, V): one prediction per row
            logits = logits[:, -1]
            return logits, None if targets is None else F.cross_entropy(logits, flat_targets)
        if targets is None:
            return logits, None
        if self.mistake == "no ignore_index":
            return logits, F.cross_entropy(flat_logits, flat_targets)
        return logits, F.cross_entropy(flat_logits, flat_targets, ignore_index=-1, reduction="none")  # per position


@pytest.mark.parametrize("mistake,fragment", [
    ("tensor", "your model's forward(idx) returned a tensor of shape"),
    ("last position", "your model's logits are a tensor of shape"),
    ("no ignore_index", "failed on the first batch: Target -1 is out of bounds (a target of -1 marks a position"),
    ("per position", "your model's loss is a tensor of shape"),
])
def test_a_model_that_breaks_the_contract_is_one_line_and_leaves_no_run(tmp_path, words_file, mistake, fragment):
    data = mm.load_data(words_file)
    with pytest.raises(mm.MakemoreError, match=re.escape(fragment)) as caught:
        mm.train(BrokenContract(data.vocab_size, mistake), data, out_dir=tmp_path, name="mine", **QUIET, **TRAIN)
    assert "the contract: forward(idx, targets=None) returns (logits, loss)" in str(caught.value)
    assert not (tmp_path / "mine").exists()


@pytest.mark.parametrize("model", [42, object(), None])
def test_a_model_that_is_neither_a_name_nor_a_module_is_one_line(tmp_path, model):
    with pytest.raises(mm.MakemoreError, match="model must be a model's name .* or an nn.Module of your own"):
        mm.train(model, "names", out_dir=tmp_path, **QUIET)


def test_a_count_of_steps_must_be_whole(tmp_path, words_file):
    with pytest.raises(mm.MakemoreError, match="--max-steps must be a whole number, got 5.5"):
        mm.train("mlp", words_file, out_dir=tmp_path, name="x", max_steps=5.5, **QUIET)
    run = mm.train("mlp", words_file, out_dir=tmp_path, name="y", **{**TRAIN, "max_steps": 2e1}, **QUIET)
    assert run.metrics["steps"] == 20
