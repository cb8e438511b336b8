"""Labeled corpora, the classifier, finetuning from a language model, classify and transfer."""
import dataclasses
import json

import pytest
import torch
from conftest import SHARED, TINY_CLF, assert_user_error, needs_shared, run

from makemore.checkpoint import load_checkpoint
from makemore.config import DataConfig
from makemore.data import LabeledBatches, load_corpus
from makemore.data.corpus import guess_kind
from makemore.errors import MakemoreError
from makemore.evaluate import item_log_probs
from makemore.models import build_model, model_config
from makemore.models.classifier import pool, reverse_items
from makemore.runs import Run
from makemore.tokenizer import CharTokenizer


def quiet(_):
    pass


def test_labeled_split_is_deduplicated_stratified_and_without_leakage(labeled_folder):
    corpus = load_corpus(DataConfig(data=str(labeled_folder)), quiet, labeled=True)
    assert corpus.labels == ["kappa", "rho", "sigma"]
    pairs = corpus.train + corpus.val + corpus.test
    assert len(pairs) == len(set(pairs))  # de-duplicated (item, label) pairs
    items = {name: {item for item, _ in part} for name, part in corpus.splits().items()}
    assert not items["train"] & items["val"] and not items["train"] & items["test"] and not items["val"] & items["test"]
    assert sum(item == "ambo" for item, _ in pairs) == 3  # its three labels, all in one split
    for i in range(3):  # stratified: each label keeps its share in val and test
        n = sum(label == i for _, label in pairs)
        n_val = sum(label == i for _, label in corpus.val)
        assert abs(n_val - 0.1 * n) <= 1.5, (i, n, n_val)
    again = load_corpus(DataConfig(data=str(labeled_folder)), quiet, labeled=True)
    assert again.val == corpus.val and again.test == corpus.test

    # a language model on the same data reads the items of the same split
    lines = load_corpus(DataConfig(data=str(labeled_folder), kind="labeled"), quiet)
    assert lines.kind == "lines" and lines.config.kind == "labeled"
    assert set(lines.train) == items["train"] and set(lines.val) == items["val"] and set(lines.test) == items["test"]


def test_label_fraction_keeps_a_share_of_each_label(labeled_folder):
    full = load_corpus(DataConfig(data=str(labeled_folder)), quiet, labeled=True)
    part = load_corpus(DataConfig(data=str(labeled_folder), label_frac=0.1, label_seed=1), quiet, labeled=True)
    assert set(part.train) < set(full.train) and set(part.train + part.unused) == set(full.train)
    assert part.val == full.val and part.test == full.test
    for i in range(3):
        n = sum(label == i for _, label in full.train)
        assert sum(label == i for _, label in part.train) == max(1, round(0.1 * n))
    other = load_corpus(DataConfig(data=str(labeled_folder), label_frac=0.1, label_seed=2), quiet, labeled=True)
    assert set(other.train) != set(part.train)
    assert part.chars() == full.chars()  # one vocabulary for every share


def test_a_folder_of_lists_is_labeled_data_for_a_language_model_too(labeled_folder):
    # `train --data <folder>` then `finetune --data <folder>`: the language model reads the items in
    # the classifier's split (files that each end with a newline were once taken for paragraphs of prose)
    said = []
    lm = load_corpus(DataConfig(data=str(labeled_folder)), said.append)
    clf = load_corpus(DataConfig(data=str(labeled_folder)), quiet, labeled=True)
    assert said[0] == f"data: {labeled_folder} read as labeled (pass --kind lines or stream to change)"
    assert (lm.kind, lm.config.kind) == ("lines", "labeled")
    for part in ("train", "val", "test"):
        assert set(getattr(lm, part)) == {item for item, _ in getattr(clf, part)}


def test_tab_separated_labels_are_read_and_guessed(tmp_path):
    path = tmp_path / "sex.tsv"
    path.write_text("F\temma\nM\tliam\nF\tolivia\nM\tnoah\nF\tava\nM\toliver\nF\tmia\nM\tjack\n" * 2, encoding="utf-8")
    assert guess_kind([path.read_text()]) == "labeled"
    corpus = load_corpus(DataConfig(data=str(path), val_frac=0.25, test_frac=0.25), quiet, labeled=True)
    assert corpus.labels == ["F", "M"] and len(corpus.train + corpus.val + corpus.test) == 8


def test_pooling_reads_only_the_item():
    features = torch.arange(2 * 5 * 3, dtype=torch.float).view(2, 5, 3)
    idx = torch.tensor([[0, 4, 5, 6, 0], [0, 7, 0, 0, 0]])  # items of 3 and 1 characters, then padding
    assert torch.equal(pool(features, idx, "last"), features[[0, 1], [3, 1]])
    assert torch.allclose(pool(features, idx, "mean"), torch.stack([features[0, 1:4].mean(0), features[1, 1]]))
    assert torch.equal(pool(features, idx, "max"), torch.stack([features[0, 1:4].amax(0), features[1, 1]]))
    concat = pool(features, idx, "concat")
    assert concat.shape == (2, 9) and torch.equal(concat[:, 3:6], pool(features, idx, "max"))


@pytest.mark.parametrize("encoder", ["lstm", "mlp", "transformer", "wavenet"])
@pytest.mark.parametrize("pooling", ["last", "mean", "max", "concat"])
def test_classifier_shapes_and_padding_do_not_matter(encoder, pooling):
    torch.manual_seed(0)
    sizes = {"n_embd": 8} | ({} if encoder == "transformer" else {"n_hidden": 16})  # a transformer has no n_hidden
    cfg = model_config("classifier", encoder=encoder, pooling=pooling, **sizes, vocab_size=10, labels=["a", "b", "c"])
    model = build_model("classifier", cfg).eval()
    tok = CharTokenizer.from_text("abcdefghi")
    batches = LabeledBatches([("abc", 0), ("defghi", 1), ("a", 2)], tok, "cpu")
    x, y = batches._rows(torch.arange(3))  # the items in their order (iter_all reads the longest first)
    logits, loss = model(x, y)
    assert logits.shape == (3, 3) and loss.shape == ()
    for row in range(3):  # an item gives the same logits alone as padded inside a batch
        alone, _ = model(x[row:row + 1, :int(batches.lengths[row])])
        assert torch.allclose(alone[0], logits[row], atol=1e-5)


def test_reverse_items_reverses_each_item_and_keeps_its_padding():
    idx = torch.tensor([[0, 4, 5, 6, 0], [0, 7, 0, 0, 0], [0, 1, 2, 3, 4]])
    assert torch.equal(reverse_items(idx), torch.tensor([[0, 6, 5, 4, 0], [0, 7, 0, 0, 0], [0, 4, 3, 2, 1]]))


@pytest.mark.parametrize("encoder", ["lstm", "transformer"])
def test_a_bidirectional_classifier_reads_each_item_both_ways(encoder):
    torch.manual_seed(0)
    sizes = {"n_embd": 8} | ({} if encoder == "transformer" else {"n_hidden": 16})
    cfg = model_config("classifier", encoder=encoder, bidirectional=True, **sizes, vocab_size=10,
                       labels=["a", "b", "c"])
    model = build_model("classifier", cfg).eval()
    model.backward.load_state_dict(model.encoder.state_dict())  # one body read both ways
    tok = CharTokenizer.from_text("abcdefghi")
    batches = LabeledBatches([("abc", 0), ("cba", 1), ("defghi", 2)], tok, "cpu")
    x, y = batches._rows(torch.arange(3))
    features = model.body(x)
    half = features.shape[1] // 2
    assert half == 3 * model._n_features()  # concat pooling, twice
    assert torch.allclose(features[0, :half], features[1, half:], atol=1e-6)  # abc forwards is cba backwards
    assert torch.allclose(features[0, half:], features[1, :half], atol=1e-6)
    assert not torch.allclose(features[0, :half], features[0, half:])
    alone = model.body(x[2:3, :int(batches.lengths[2])])  # padding changes neither direction
    assert torch.allclose(alone[0], features[2], atol=1e-5)
    logits, loss = model(x, y)
    assert logits.shape == (3, 3) and loss.shape == ()


def test_classify_reads_an_item_longer_than_the_model_reads_in_pieces():
    cfg = model_config("classifier", encoder="transformer", block_size=8, n_embd=8, vocab_size=3, labels=["a", "b"])
    model = build_model("classifier", cfg).eval()
    tok = CharTokenizer.from_text("ab")
    assert item_log_probs(model, tok, ["ab" * 3 + "a"]).shape == (1, 2)  # 7 characters and the start: 8 positions
    logp = item_log_probs(model, tok, ["ab", "ab" * 4, "aba"])  # 8 characters: pieces "abababa" and "b"
    pieces = item_log_probs(model, tok, ["abababa", "b"])
    assert torch.allclose(logp[1], pieces.exp().mean(0).log(), atol=1e-6)
    assert torch.allclose(logp[[0, 2]], item_log_probs(model, tok, ["ab", "aba"]), atol=1e-6)


def test_classifier_learns_and_reports_scores(tmp_path, labeled_folder):
    result = run("train", "--model", "classifier", "--data", labeled_folder, "--out-dir", tmp_path, "--name", "c",
                 "--max-steps", 150, "--eval-interval", 50, "--lr", 1e-2, *TINY_CLF)
    assert result.exit_code == 0, result.output
    assert "read as labeled" in result.output and "val accuracy" in result.output
    metrics = json.loads((tmp_path / "c" / "metrics.json").read_text())
    assert metrics["unit"] == "nats/item" and metrics["test_loss"] < 0.5 * torch.log(torch.tensor(3.0)).item()
    assert metrics["val_accuracy"] >= 0.85 and 0 < metrics["test_macro_f1"] <= 1
    assert set(metrics["test_per_label"]) == {"kappa", "rho", "sigma"}
    assert sum(map(sum, metrics["test_confusion"])) == metrics["test_items"]
    assert (tmp_path / "c" / "confusion.png").stat().st_size > 10_000

    result = run("eval", "--run", tmp_path / "c")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("test accuracy ") and "kappa" in result.stdout
    lines = sum(len(f.read_text().split()) for f in labeled_folder.iterdir())
    result = run("eval", "--run", tmp_path / "c", "--data", labeled_folder)  # all of it, repeats included
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{labeled_folder} accuracy ") and f" {lines:,} items" in result.stdout
    labels_of = {}  # "ambo" is in every class: three pairs, one prediction
    for f in labeled_folder.iterdir():
        for item in f.read_text().split():
            labels_of.setdefault(item, set()).add(f.stem)
    clf = Run.open(tmp_path / "c")
    pred = item_log_probs(clf.load_model()[0], clf.tokenizer, list(labels_of)).argmax(-1).tolist()
    right = sum(clf.model_config.labels[p] in labels_of[item] for item, p in zip(labels_of, pred)) / len(labels_of)
    assert (f"items: {len(labels_of):,} distinct, 1 with several labels; accuracy counting an item right when it gets "
            f"any of its labels: {right:.4f}") in result.stdout
    several = next(name for name, pairs in load_corpus(clf.data_config, labeled=True).splits().items()
                   if "ambo" in dict(pairs))
    assert [k for k in metrics if k.endswith("any_label_accuracy")] == [f"{several}_any_label_accuracy"]
    result = run("eval", "--run", tmp_path / "c", "--split", several)  # the same figure as metrics.json's
    assert f"any of its labels: {metrics[f'{several}_any_label_accuracy']:.4f}" in result.stdout
    (tmp_path / "one.tsv").write_text("kappa\tkakoku\n", encoding="utf-8")  # classified right below
    result = run("eval", "--run", tmp_path / "c", "--data", tmp_path / "one.tsv")
    assert result.exit_code == 0, result.output
    assert [line.split()[0] for line in result.stdout.splitlines()[1:]] == ["label", "kappa"]  # no rows of zeros
    (tmp_path / "other.tsv").write_text("kappa\tkaku\ntau\tkoko\n", encoding="utf-8")
    assert_user_error(run("eval", "--run", tmp_path / "c", "--data", tmp_path / "other.tsv"),
                      "label(s) this classifier does not know: tau")

    result = run("classify", "--run", tmp_path / "c", "kakoku", "rirare", "--top-k", 2)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and lines[0].split()[:2] == ["kakoku", "kappa"] and lines[1].split()[:2] == ["rirare", "rho"]
    probs = [float(p) for p in lines[0].split()[2::2]]
    assert len(probs) == 2 and probs[0] >= probs[1] and sum(probs) <= 1.0001

    assert_user_error(run("classify", "--run", tmp_path / "c", "kaZ"), "'Z'", "not in this model's vocabulary")
    assert_user_error(run("sample", "--run", tmp_path / "c"), "is a classifier", "makemore classify")


def two_classifiers(tmp_path, labeled_folder):
    """Two tiny classifiers of the same data and split, from other seeds."""
    for seed in (1, 2):
        result = run("train", "--model", "classifier", "--data", labeled_folder, "--out-dir", tmp_path, "--name",
                     f"c{seed}", "--max-steps", 40, "--eval-interval", 20, "--seed", seed, *TINY_CLF)
        assert result.exit_code == 0, result.output
    return tmp_path / "c1", tmp_path / "c2"


def test_eval_and_classify_average_several_classifiers(tmp_path, labeled_folder):
    runs = two_classifiers(tmp_path, labeled_folder)
    probs = []  # each run's test-split probabilities, computed here without the code under test
    for path in runs:
        r = Run.open(path)
        model, _ = r.load_model()
        corpus = load_corpus(r.data_config, quiet, labeled=True)
        batches = LabeledBatches(corpus.test, r.tokenizer, "cpu", max_input=model.max_input)
        with torch.no_grad():
            probs.append(model(batches._rows(torch.arange(len(batches)))[0])[0].softmax(-1))  # in the split's order
    labels, names = batches.labels, r.model_config.labels
    mean = (probs[0] + probs[1]) / 2
    assert not torch.allclose(probs[0], probs[1], atol=1e-3)  # two different classifiers

    result = run("eval", "--run", runs[0], "--run", runs[1])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    for line, path in zip(lines, runs):  # each member's own figures first
        alone = run("eval", "--run", path).stdout.splitlines()[0]
        assert line.startswith(f"{path}: {alone.split(', loss')[0]}"), (line, alone)
    accuracy = (mean.argmax(-1) == labels).double().mean().item()
    loss = -mean[torch.arange(len(labels)), labels].log().mean().item()
    assert lines[2].startswith(f"test accuracy {accuracy:.4f}, macro-F1 ")
    assert f"loss {loss:.4f} nats/item, {len(labels):,} items, the average of 2 runs (best.pt)" in lines[2]
    table = lines.index(next(line for line in lines if line.startswith("label ")))
    assert {line.split()[0] for line in lines[table + 1:]} <= {"kappa", "rho", "sigma"}

    result = run("eval", "--run", runs[0], "--run", runs[1], "--fit-weights")  # weighed by their val split's labels
    assert result.exit_code == 0, result.output
    weighted = result.stdout.splitlines()
    assert weighted[0].startswith(f"weights fitted on the val split: {runs[0]} ")
    assert weighted[1:3] == lines[:2] and "the weighted average of 2 runs (best.pt)" in weighted[3]

    result = run("eval", "--run", runs[0], "--run", runs[1], "--items", tmp_path / "items.tsv")  # each item's row
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in (tmp_path / "items.tsv").read_text(encoding="utf-8").splitlines()]
    assert rows[0] == ["item", "label", "predicted", "p_predicted", "p_label"]
    assert [(r[0], r[1]) for r in rows[1:]] == [(item, names[label]) for item, label in corpus.test]
    for r, m, label in zip(rows[1:], mean, labels):
        assert r[2] == names[int(m.argmax())] and float(r[3]) == pytest.approx(m.max().item(), abs=1e-4)
        assert float(r[4]) == pytest.approx(m[label].item(), abs=1e-4)

    items = ["kakoku", "rirare", "sasu"]
    result = run("classify", "--run", runs[0], "--run", runs[1], *items, "--top-k", 3)
    assert result.exit_code == 0, result.output
    alone = [run("classify", "--run", path, *items, "--top-k", 3).stdout.splitlines() for path in runs]
    for i, line in enumerate(result.stdout.splitlines()):
        got = dict(zip(line.split()[1::2], map(float, line.split()[2::2])))
        each = [dict(zip(a[i].split()[1::2], map(float, a[i].split()[2::2]))) for a in alone]
        assert set(got) == {"kappa", "rho", "sigma"}
        for label, p in got.items():  # the mean of the two runs' probabilities (each printed to 3 decimals)
            assert abs(p - (each[0][label] + each[1][label]) / 2) <= 0.0011, (line, each)

    result = run("classify", "--run", runs[0], "--run", runs[1], "--fit-weights", *items, "--top-k", 3)
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == weighted[0]  # the weights eval fits, told on stderr
    w = [float(part.split()[-1]) for part in weighted[0].split(": ", 1)[1].split(", ")]
    for i, line in enumerate(result.stdout.splitlines()):
        got = dict(zip(line.split()[1::2], map(float, line.split()[2::2])))
        each = [dict(zip(a[i].split()[1::2], map(float, a[i].split()[2::2]))) for a in alone]
        for label, p in got.items():
            assert abs(p - (w[0] * each[0][label] + w[1] * each[1][label])) <= 0.0021, (line, each, w)


def test_finetune_reads_with_the_tokenizer_of_a_language_model_that_knows_more_characters(tmp_path, labeled_folder):
    import random

    from conftest import SYLLABLES

    rng = random.Random(1)  # unlabeled text: the same syllables, each item with a "c" or a "d" (so none is labeled),
    syllables = [s for group in SYLLABLES.values() for s in group] + ["ambo"]  # characters the labels never use
    items = {"".join(rng.choice(syllables) for _ in range(3)) + rng.choice(["ca", "do"]) for _ in range(300)}
    text = tmp_path / "unlabeled.txt"
    text.write_text("\n".join(sorted(items)) + "\n", encoding="utf-8")
    result = run("train", "--model", "lstm", "--data", text, "--out-dir", tmp_path, "--name", "lm-more",
                 "--max-steps", 30, "--eval-interval", 30, *TINY_CLF)
    assert result.exit_code == 0, result.output
    result = run(
        "finetune",
        "--from",
        tmp_path / "lm-more",
        "--data",
        labeled_folder,
        "--out-dir",
        tmp_path,
        "--name",
        "clf",
        "--max-steps",
        30,
        "--eval-interval",
        30,
        *TINY_CLF[4:],
    )
    assert result.exit_code == 0, result.output
    lm, clf = Run.open(tmp_path / "lm-more"), Run.open(tmp_path / "clf")
    assert {"c", "d"} <= set(lm.tokenizer.chars) and not {"c", "d"} & set(
        load_corpus(clf.data_config, quiet, labeled=True).chars()
    )
    assert clf.tokenizer.to_json() == lm.tokenizer.to_json()  # an id means the character the body learnt it as
    assert clf.tokenizer.encode("ambo") == lm.tokenizer.encode("ambo")
    result = run("classify", "--run", tmp_path / "clf", "kakoku", "ambo")
    assert result.exit_code == 0, result.output

def test_finetune_copies_the_body_exactly_and_freezing_keeps_it(tmp_path, labeled_folder, lm_run):
    lm_weights = load_checkpoint(lm_run / "best.pt")["model"]
    result = run("finetune", "--from", lm_run, "--data", labeled_folder, "--out-dir", tmp_path, "--name", "frozen",
                 "--max-steps", 40, "--eval-interval", 20, "--freeze-steps", 40, *TINY_CLF[4:])
    assert result.exit_code == 0, result.output
    assert "body: lstm from" in result.output
    run_ = Run.open(tmp_path / "frozen")
    assert run_.model_config.encoder == "lstm" and run_.model_config.pretrained == str(lm_run)
    assert run_.tokenizer.chars == Run.open(lm_run).tokenizer.chars
    last = load_checkpoint(tmp_path / "frozen" / "last.pt")["model"]
    for name, tensor in lm_weights.items():  # frozen for every step: the body is the language model's, bit for bit
        assert torch.equal(last[f"encoder.{name}"], tensor), name
    first = build_model("classifier", run_.model_config).state_dict()["classifier_head.weight"]
    assert not torch.equal(last["classifier_head.weight"], first)  # while the head learned

    result = run("finetune", "--from", lm_run, "--data", labeled_folder, "--out-dir", tmp_path, "--name", "thawed",
                 "--max-steps", 40, "--eval-interval", 20, "--freeze-steps", 10, "--body-lr-mult", 0.5, *TINY_CLF[4:])
    assert result.exit_code == 0, result.output
    last = load_checkpoint(tmp_path / "thawed" / "last.pt")["model"]
    assert not torch.equal(last["encoder.rnn.weight_hh_l0"], lm_weights["rnn.weight_hh_l0"])


def test_a_language_model_of_labeled_items_samples_items(lm_run):
    result = run("sample", "--run", lm_run, "-n", 5, "--seed", 0, "--unique")
    assert result.exit_code == 0, result.output
    samples = result.stdout.splitlines()
    assert len(samples) == 5 and "---" not in samples and all(len(s) < 64 for s in samples)  # items, not run-on text


def test_finetune_from_a_model_whose_pretraining_data_is_gone_warns_and_goes_on(tmp_path, labeled_folder, lm_run):
    config = json.loads((lm_run / "config.json").read_text())
    config["data"]["data"] = str(tmp_path / "moved-away")
    (lm_run / "config.json").write_text(json.dumps(config))
    result = run("finetune", "--from", lm_run, "--data", labeled_folder, "--out-dir", tmp_path, "--name", "c",
                 "--max-steps", 10, "--eval-interval", 10, *TINY_CLF[4:])
    assert result.exit_code == 0, result.output
    assert (
        f"warning: cannot read the pretraining data of {lm_run} to check that it holds no val or test item"
        in result.output
    )


def test_gradual_unfreezing_thaws_the_body_from_the_top():
    cfg = model_config("classifier", encoder="mlp", n_layer=2, n_embd=4, n_hidden=8, vocab_size=5, labels=["a", "b"],
                       freeze_steps=100, unfreeze="gradual", body_lr_mult=0.25)
    model = build_model("classifier", cfg)
    body = model.body_parameters()
    assert len(body) == 1 + 2 * 2  # the embedding, then a weight and a bias per layer
    thawed = []
    for step in (0, 99, 100, 150, 199, 200):
        model.before_step(step)
        thawed.append([p.requires_grad for p in body])
    assert not any(thawed[0]) and not any(thawed[1])
    assert thawed[2][-1] and not thawed[2][0]  # the top first
    assert sum(thawed[3]) > sum(thawed[2]) and all(thawed[5])
    assert all(p.requires_grad for p in model.classifier_head.parameters())
    groups = model.optimizer_groups(0.01)
    assert {g["lr_mult"] for g in groups} == {0.25, 1.0}
    assert sum(len(g["params"]) for g in groups) == len(body) + 2  # the language model's own head is left out

    model = build_model("classifier", model_config("classifier", **{**dataclasses.asdict(cfg), "bidirectional": True}))
    both = model.body_parameters()
    assert len(both) == 2 * len(body) and {id(p) for p in both[1::2]} <= {id(p) for p in model.backward.parameters()}
    model.before_step(100)
    assert [p.requires_grad for p in both][-2:] == [True, True] and not both[0].requires_grad  # both tops first


def test_finetune_with_a_backward_language_model_copies_both_bodies(tmp_path, labeled_folder, lm_run, lm_backward_run):
    backward = lm_backward_run
    metrics = json.loads((backward / "metrics.json").read_text())
    result = run("eval", "--run", backward)  # eval reads the items right to left, as training did
    assert result.exit_code == 0 and f"test loss {metrics['test_loss']:.4f}" in result.stdout
    result = run("sample", "--run", backward, "-n", 8, "--seed", 0, "--prefix", "ka")
    assert result.exit_code == 0, result.output
    assert all(s.endswith("ka") for s in result.stdout.splitlines())  # written from the end, shown in reading order

    result = run("finetune", "--from", lm_run, "--backward", backward, "--data", labeled_folder, "--out-dir", tmp_path,
                 "--name", "bi", "--max-steps", 20, "--eval-interval", 10, "--freeze-steps", 20, *TINY_CLF[4:])
    assert result.exit_code == 0, result.output
    clf = Run.open(tmp_path / "bi")
    assert clf.model_config.bidirectional and clf.model_config.pretrained_backward == str(backward)
    last = load_checkpoint(tmp_path / "bi" / "last.pt")["model"]
    for prefix, lm in (("encoder", lm_run), ("backward", backward)):
        for name, tensor in load_checkpoint(lm / "best.pt")["model"].items():
            assert torch.equal(last[f"{prefix}.{name}"], tensor), (prefix, name)
    result = run("classify", "--run", tmp_path / "bi", "kakoku")
    assert result.exit_code == 0 and result.stdout.startswith("kakoku")

    def finetune(*args):
        return run("finetune", "--data", labeled_folder, "--out-dir", tmp_path, "--max-steps", 10, *args)

    assert_user_error(finetune("--from", backward), f"--from {backward} reads items right to "
                                                    "left", "pass it as --backward")
    assert_user_error(finetune("--from", lm_run, "--backward", lm_run),
                      f"--backward {lm_run} reads items left to right")
    assert_user_error(finetune("--from", lm_run, "--backward", tmp_path / "bi"),
                      "is a classifier run, not a language model")
    assert_user_error(
        run("train", "--model", "classifier", "--data", labeled_folder, "--out-dir", tmp_path, "--reverse", "true"),
        "--reverse is for language models",
        "--bidirectional true",
    )
    result = run("train", "--model", "lstm", "--data", labeled_folder, "--out-dir", tmp_path, "--name", "wide-backward",
                 "--reverse", "true", "--max-steps", 2, "--eval-interval", 1, *TINY_CLF[:2], "--n-hidden", 48,
                 *TINY_CLF[4:])
    assert result.exit_code == 0, result.output
    assert_user_error(finetune("--from", lm_run, "--backward", tmp_path / "wide-backward"),
                      "differs from --from", "--n-hidden 48 against 32")


def test_tiny_transfer_writes_its_table_and_plot(tmp_path, labeled_folder):
    out = tmp_path / "transfer"
    args = ["transfer", "--data", labeled_folder, "--encoder", "lstm", "--fractions", "0.2,1", "--seeds", 2,
            "--out-dir", out, "--pretrain-steps", 40, "--max-steps", 30, "--eval-interval", 15, *TINY_CLF]
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert "| labels | scratch accuracy | pretrained accuracy |" in result.stdout
    rows = (out / "transfer.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 2 * 3 and rows[0].startswith("fraction,labels,seed,init,test_accuracy")
    assert sum(",n-gram baseline," in row for row in rows) == 2 * 2  # fitted on the same labels, each share and seed
    assert (out / "transfer.png").stat().st_size > 20_000
    pretrained = Run.open(out / "frac0.2-seed1-pretrained")
    assert pretrained.model_config.pretrained == str(out / "lm") and pretrained.data_config.label_frac == 0.2
    assert Run.open(out / "frac0.2-seed2-scratch").data_config.label_seed == 2
    again = run(*args)  # finished runs are read back, not retrained
    assert again.exit_code == 0 and "training" not in again.output.replace("done before", "")
    bigger = run(*args, "--head-dropout", 0.5)  # a finished run is never read back as one made another way
    assert (
        bigger.exit_code == 2
        and "frac0.2-seed1-scratch holds a run made with other options: head_dropout" in bigger.stderr
    )


def test_a_bidirectional_transfer_pretrains_a_backward_language_model_too(tmp_path, labeled_folder):
    out = tmp_path / "transfer"
    result = run("transfer", "--data", labeled_folder, "--fractions", "1", "--seeds", 1, "--bidirectional", "true",
                 "--out-dir", out, "--pretrain-steps", 20, "--max-steps", 10, "--eval-interval", 5, *TINY_CLF)
    assert result.exit_code == 0, result.output
    assert not Run.open(out / "lm").data_config.reverse and Run.open(out / "lm-backward").data_config.reverse
    pretrained, scratch = Run.open(out / "frac1-seed1-pretrained"), Run.open(out / "frac1-seed1-scratch")
    assert pretrained.model_config.pretrained_backward == str(out / "lm-backward")
    assert pretrained.model_config.bidirectional and scratch.model_config.bidirectional


def test_transfer_curves_keep_the_legend_off_both_panels(tmp_path, monkeypatch):
    from makemore import plots

    closed = []
    monkeypatch.setattr(plots, "_save", lambda fig, path, **options: closed.append(fig))
    def point(acc):
        return {"test_accuracy": [acc], "test_macro_f1": [acc - 0.2]}

    summary = {"scratch": [(10, point(0.6)), (100, point(0.55))], "pretrained": [(10, point(0.7)), (100, point(0.52))]}
    plots.transfer_curves(summary, tmp_path / "t.png", "t", ("A", 0.5))
    fig = closed[0]
    assert all(ax.get_legend() is None for ax in fig.axes)  # curves that end low on the right once ran under it
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        "scratch (mean of 1 seed)", "pretrained (mean of 1 seed)", "always A (0.500)"]


@needs_shared
def test_surnames_split_matches_the_issue():
    said = []
    corpus = load_corpus(DataConfig(data=str(SHARED / "surnames")), said.append, labeled=True)
    pairs = corpus.train + corpus.val + corpus.test
    assert len(pairs) == 18_015 and len(corpus.labels) == 18
    assert "data: 20,074 (item, label) pairs, 18,015 distinct: each is kept once, so none is in two splits" in said
    items = [{item for item, _ in part} for part in corpus.splits().values()]
    assert not (items[0] & items[1] or items[0] & items[2] or items[1] & items[2])
    russian = corpus.labels.index("Russian")
    assert round(sum(label == russian for _, label in pairs) / len(pairs), 2) == 0.52


def test_classifier_config_rejects_bad_options():
    with pytest.raises(MakemoreError, match="--pooling must be one of"):
        model_config("classifier", pooling="sum", vocab_size=5, labels=["a", "b"])
    with pytest.raises(MakemoreError, match="--body-lr-mult must be positive"):
        model_config("classifier", body_lr_mult=0, vocab_size=5, labels=["a", "b"])


def test_hugging_face_labeled_path_on_local_files(tmp_path):
    folder = tmp_path / "hfdata"
    folder.mkdir()
    rows = [f"{label}{i},{label}" for label in ("ka", "ri") for i in range(20)]
    (folder / "train.csv").write_text("name,lang\n" + "\n".join(rows) + "\n", encoding="utf-8")
    corpus = load_corpus(DataConfig(data=f"hf:{folder}", text_column="name", label_column="lang"), quiet, labeled=True)
    assert corpus.labels == ["ka", "ri"] and len(corpus.train + corpus.val + corpus.test) == 40
    assert all(item.startswith(corpus.labels[label]) for item, label in corpus.train + corpus.val + corpus.test)
    with pytest.raises(MakemoreError, match="no column 'label'.*--label-column"):
        load_corpus(DataConfig(data=f"hf:{folder}", text_column="name"), quiet, labeled=True)


def test_a_hugging_face_class_label_column_gives_its_label_names(tmp_path):
    import datasets

    names = [f"{label}{i}" for label in ("ka", "ri") for i in range(20)]
    features = datasets.Features({"name": datasets.Value("string"), "lang": datasets.ClassLabel(names=["ka", "ri"])})
    rows = {"name": names + [None], "lang": [0] * 20 + [1] * 20 + [1]}  # a row without a name is left out
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(tmp_path / "saved"))
    cfg = DataConfig(data=f"hf:{tmp_path / 'saved'}", text_column="name", label_column="lang")
    corpus = load_corpus(cfg, quiet, labeled=True)
    pairs = corpus.train + corpus.val + corpus.test
    assert corpus.labels == ["ka", "ri"] and len(pairs) == 40
    assert all(item.startswith(corpus.labels[label]) for item, label in pairs)


def test_classifier_resumes_from_its_run_directory(tmp_path, labeled_folder):
    args = [
        "--model",
        "classifier",
        "--data",
        labeled_folder,
        "--out-dir",
        tmp_path,
        "--name",
        "c",
        "--eval-interval",
        20,
        *TINY_CLF,
    ]
    assert run("train", *args, "--max-steps", 20).exit_code == 0
    result = run("train", "--resume", "--name", "c", "--out-dir", tmp_path, "--max-steps", 40)
    assert result.exit_code == 0, result.output
    assert "resumed" in result.output and json.loads((tmp_path / "c" / "metrics.json").read_text())["steps"] == 40
