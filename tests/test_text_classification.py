"""Text classification as people meet it: a language model pretrained on any text, finetuned on labeled
sentences; items of any length; datasets in the hub's formats; the n-gram baseline beside every figure."""
import json
import random

import pytest
import torch
from conftest import TINY_CLF, assert_user_error, run

from makemore.config import DataConfig
from makemore.data import LabeledBatches, load_corpus
from makemore.data.batches import BUCKET_ROWS, MAX_PIECES, SCORED_CHARS_PER_ROW
from makemore.errors import MakemoreError
from makemore.evaluate import log_probs
from makemore.tokenizer import CharTokenizer

FINETUNE = TINY_CLF[4:]  # the body's options come from --from

TOPICS = {
    "beast": ["a small animal", "a large bird", "a fish of the sea", "an insect of the genus", "a wild cat"],
    "plant": ["a tree of the genus", "a shrub with flowers", "a herb of the family", "a vine with fruit", "grass"],
    "thing": ["a tool for cutting", "a device that measures", "a machine used in", "a vessel that carries", "a box"],
}
TAILS = ["found in warm places", "with long legs", "of the north", "grown for food", "used by people", "that is red",
         "with a hard shell", "of the old world", "common in gardens", "made of metal", "that lives alone"]


def sentences(n, seed=0):
    """n distinct labeled sentences of three topics, each told by its opening words."""
    rng, out = random.Random(seed), {}
    while len(out) < n:
        label = rng.choice(sorted(TOPICS))
        text = f"{rng.choice(TOPICS[label])} {rng.choice(TAILS)} {rng.choice(TAILS)} number {rng.randint(0, 999)}"
        out[text] = label
    return [(text, label) for text, label in out.items()]


@pytest.fixture
def sentence_file(tmp_path):
    path = tmp_path / "sentences.tsv"
    path.write_text("".join(f"{label}\t{text}\n" for text, label in sentences(600)), encoding="utf-8")
    return path


@pytest.fixture
def prose_lm(tmp_path):
    """A tiny LSTM pretrained on unlabeled prose (a stream corpus) that shares no line with the labels."""
    rng = random.Random(1)
    words = sorted({w for phrases in TOPICS.values() for p in phrases for w in p.split()} | {w for t in TAILS
                                                                                           for w in t.split()})
    paragraphs = ["\n".join(" ".join(rng.choice(words) for _ in range(12)) + " 0123456789" for _ in range(8))
                  for _ in range(40)]
    text = tmp_path / "prose.txt"
    text.write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
    result = run("train", "--model", "lstm", "--data", text, "--out-dir", tmp_path, "--name", "lm", "--max-steps", 40,
                 "--eval-interval", 20, "--seq-len", 64, *TINY_CLF)
    assert result.exit_code == 0, result.output
    assert "read as stream" in result.output
    return tmp_path / "lm", text


def test_a_language_model_pretrained_on_prose_finetunes_into_a_classifier(tmp_path, prose_lm, sentence_file):
    lm, _ = prose_lm
    result = run("finetune", "--from", lm, "--data", sentence_file, "--out-dir", tmp_path, "--name", "clf",
                 "--max-steps", 40, "--eval-interval", 20, *FINETUNE)
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "clf" / "metrics.json").read_text())
    assert metrics["test_items"] == 60 and 0 <= metrics["test_accuracy"] <= 1
    config = json.loads((tmp_path / "clf" / "config.json").read_text())
    assert config["model_config"]["pretrained"].endswith("lm")


def test_the_leakage_check_finds_val_and_test_items_in_prose(tmp_path, prose_lm, sentence_file):
    _, text = prose_lm
    corpus = load_corpus(DataConfig(data=str(sentence_file)), lambda _: None, labeled=True)
    whole, inside = corpus.test[0][0], max((item for item, _ in corpus.val), key=len)
    assert len(inside) >= 40  # searched for inside lines
    # at the start: in the language model's train split, the text it learns from
    text.write_text(f"{whole}\nas the book says, {inside}, and so on\n" + text.read_text(), encoding="utf-8")
    lm2 = tmp_path / "lm2"
    assert run("train", "--model", "lstm", "--data", text, "--out-dir", tmp_path, "--name", "lm2", "--max-steps", 2,
               "--eval-interval", 2, "--seq-len", 64, *TINY_CLF).exit_code == 0
    result = run("finetune", "--from", lm2, "--data", sentence_file, "--out-dir", tmp_path, "--name", "leaky",
                 "--max-steps", 2, *FINETUNE)
    assert_user_error(result, "holds items of this classifier's val and test splits", "1 as whole lines",
                      "2 of 120 searched for inside", "--leak-check warn")  # the whole line is inside too
    assert not (tmp_path / "leaky").exists()  # refused before anything is written

    result = run("finetune", "--from", lm2, "--data", sentence_file, "--out-dir", tmp_path, "--name", "warned",
                 "--max-steps", 2, "--eval-interval", 2, "--leak-check", "warn", *FINETUNE)
    assert result.exit_code == 0, result.output
    assert "warning: the pretraining text" in result.output and "overstate" in result.output

    import makemore as mm

    with pytest.raises(MakemoreError, match="leak_check must be one of"):
        mm.finetune(lm2, sentence_file, out_dir=tmp_path, name="x", leak_check="maybe", max_steps=2)


def test_a_tokenizer_without_the_labels_characters_is_refused_with_the_characters_named(tmp_path, prose_lm):
    lm, _ = prose_lm
    data = tmp_path / "odd.tsv"
    data.write_text("".join(f"{'a' if i % 2 else 'b'}\tzébra quête {i}\n" for i in range(40)), encoding="utf-8")
    result = run("finetune", "--from", lm, "--data", data, "--out-dir", tmp_path, "--max-steps", 2, *FINETUNE)
    assert_user_error(result, "lacks", "é", "--min-char-count 1")


def tiny_tokenizer(items):
    return CharTokenizer.from_text([item for item, _ in items])


def test_long_items_train_on_their_start_and_are_scored_in_pieces():
    pairs = [("ab" * 10, 0), ("ba" * 300, 1), ("abc", 1)]  # 20, 600 and 3 characters
    tok = tiny_tokenizer(pairs)
    train = LabeledBatches(pairs, tok, "cpu", max_len=50)
    assert train.cut == 1 and int(train.lengths.max()) == 51 and len(train) == 3
    scored = LabeledBatches(pairs, tok, "cpu", max_len=50, pieces=True)
    assert len(scored.lengths) == 1 + 12 + 1 and len(scored) == 3  # 600 characters: 12 pieces of 50
    document = LabeledBatches([("ab" * 2500, 0)], tok, "cpu", max_len=50, pieces=True)  # 100 pieces of 50
    assert len(document.lengths) == MAX_PIECES  # spread over it: time and memory bounded however long

    class PieceLength(torch.nn.Module):
        """Label 1's log-odds: the row's length; so an item's pieces disagree when their lengths differ."""
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, idx, labels=None):
            n = (idx != 0).sum(1).float() / 10
            return torch.stack([torch.zeros_like(n), n], 1), None

    logp, labels = log_probs(PieceLength(), scored, 4)  # batches of 4 rows: iter_all reads in several batches
    assert labels.tolist() == [0, 1, 1] and logp.shape == (3, 2)
    p_piece = torch.sigmoid(torch.tensor(5.0))  # each 50-character piece of item 2
    assert torch.allclose(logp[1].exp()[1], p_piece)
    assert torch.allclose(logp[0].exp()[1], torch.sigmoid(torch.tensor(2.0)))


def test_scoring_reads_every_row_once_within_a_budget_of_characters():
    rng = random.Random(0)
    pairs = [("x" * rng.randint(1, 300), rng.randint(0, 1)) for _ in range(500)]
    batches = LabeledBatches(pairs, tiny_tokenizer(pairs), "cpu", max_len=1000, pieces=True)
    seen = 0
    for x, y in batches.iter_all(16):
        assert x.shape[0] <= 16 and x.shape[0] * x.shape[1] <= 16 * SCORED_CHARS_PER_ROW or x.shape[0] == 1
        seen += x.shape[0]
    assert seen == 500


def test_length_buckets_draw_every_row_alike_and_cut_padding():
    rng = random.Random(0)
    lengths = [rng.choice([5] * 9 + [400]) for _ in range(8 * BUCKET_ROWS)]
    pairs = [("y" * n, i % 2) for i, n in enumerate(lengths)]
    batches = LabeledBatches(pairs, tiny_tokenizer(pairs), "cpu")
    flat = LabeledBatches(pairs, tiny_tokenizer(pairs), "cpu", buckets=1)
    assert len(batches.buckets) == 8 and len(flat.buckets) == 1
    g, counts, widths, flat_widths = torch.Generator().manual_seed(0), torch.zeros(2), [], []
    for _ in range(400):
        x, _ = batches.sample(64, g)
        widths.append(x.shape[1])
        counts += torch.bincount(((x != 0).sum(1) > 100).long(), minlength=2)
        flat_widths.append(flat.sample(64, g)[0].shape[1])
    share_long = counts[1] / counts.sum()
    assert abs(share_long - sum(n > 100 for n in lengths) / len(lengths)) < 0.03  # drawn as often as they occur
    assert sum(widths) < 0.35 * sum(flat_widths)  # most batches hold no long row and pay for none

    batches.balance()  # every label alike: the weights hold within buckets too
    labels = torch.cat([batches.sample(64, g)[1] for _ in range(200)])
    assert abs(labels.float().mean().item() - 0.5) < 0.05


def test_a_fixed_sample_of_the_train_split_is_what_validation_scores():
    pairs = sentences(300)
    ids = {label: i for i, label in enumerate(sorted(TOPICS))}
    pairs = [(text, ids[label]) for text, label in pairs]
    batches = LabeledBatches(pairs, tiny_tokenizer(pairs), "cpu")
    part = batches.sampled(50)
    assert len(part) == 50 and part.sampled(50) is part
    again = batches.sampled(50)
    assert torch.equal(part.x, again.x) and torch.equal(part.labels, again.labels)
    assert batches.sampled(1000) is batches


def test_a_classifier_counts_characters_per_second_and_scores_the_whole_train_split_at_the_end(tmp_path,
                                                                                               sentence_file,
                                                                                               monkeypatch):
    import makemore.tasks

    monkeypatch.setattr(makemore.tasks, "TRAIN_SAMPLE", 30)
    result = run("train", "--model", "classifier", "--data", sentence_file, "--out-dir", tmp_path, "--name", "clf",
                 "--max-steps", 30, "--eval-interval", 10, *TINY_CLF)
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "clf" / "metrics.json").read_text())
    assert metrics["train_items"] == 480  # the whole split, once
    items_per_s = 30 * 32 / metrics["seconds"]
    assert metrics["train_chars_per_s"] > 20 * items_per_s  # the sentences are 40-70 characters long


def test_classify_reads_a_long_item_in_pieces(tmp_path, sentence_file):
    import makemore as mm

    run_ = mm.train("classifier", mm.load_data(sentence_file), out_dir=tmp_path, name="clf", max_steps=20,
                    eval_interval=10, n_embd=8, n_hidden=16, device="cpu", progress=False, log=lambda *a: None)
    long_item = "a tree of the genus with long legs " * 57_000  # 1,995,000 characters: 64 pieces of 1,000 read
    (item, best), = run_.classify([long_item], top_k=3)
    assert item == long_item and len(best) == 3 and abs(sum(p for _, p in best) - 1) < 1e-4
    with pytest.raises(MakemoreError, match="not one string"):
        run_.classify("a tree")
    result = run("classify", "--run", tmp_path / "clf", "x" * 2_000_001)
    assert_user_error(result, "2,000,001 characters", "split it")


def test_a_labeled_file_loads_with_its_labels():
    import makemore as mm

    data = mm.load_data("glosses")
    assert data.kind == "labeled" and data.corpus.labels[:2] == ["animal", "artifact"]
    item, label = data.train[0]
    assert isinstance(item, str) and isinstance(label, int)
    assert len(data.train) == 7200 and len(data.test) == 900


# -- datasets as people have them ------------------------------------------------------------------

def write_table(folder, split, rows, fmt):
    import datasets

    table = datasets.Dataset.from_list(rows)
    path = folder / f"{split}.{fmt}"
    {"csv": table.to_csv, "jsonl": table.to_json, "parquet": table.to_parquet}[fmt](str(path))


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_a_folder_of_table_files_keeps_its_own_splits_and_finds_the_sentence_column(tmp_path, fmt):
    pairs = sentences(400, seed=3)
    folder = tmp_path / "tables"
    folder.mkdir()
    rows = [{"idx": i, "sentence": text, "label": label} for i, (text, label) in enumerate(pairs)]
    write_table(folder, "train", rows[:300], fmt)
    write_table(folder, "test", rows[300:], fmt)
    logged = []
    corpus = load_corpus(DataConfig(data=str(folder)), logged.append, labeled=True)
    assert {item for item, _ in corpus.test} == {r["sentence"] for r in rows[300:]}  # the dataset's own test split
    assert len(corpus.val) == 30 and len(corpus.train) == 270  # val drawn from its train split
    assert any("column 'sentence' read as the text" in line for line in logged)
    assert any("own splits (train, test) are kept; val drawn from train" in line for line in logged)


def test_class_labels_give_their_names_and_an_unlabeled_split_is_left_out(tmp_path):
    import datasets

    names = sorted(TOPICS)
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=names)})
    pairs = sentences(300, seed=4)
    def make(part, labels):
        return datasets.Dataset.from_dict({"text": [t for t, _ in part], "label": labels}, features=features)

    dataset = datasets.DatasetDict({
        "train": make(pairs[:200], [names.index(label) for _, label in pairs[:200]]),
        "validation": make(pairs[200:250], [names.index(label) for _, label in pairs[200:250]]),
        "test": make(pairs[250:], [-1] * 50),  # as GLUE's test splits: no labels
    })
    dataset.save_to_disk(str(tmp_path / "saved"))
    corpus = load_corpus(DataConfig(data=f"hf:{tmp_path / 'saved'}"), lambda _: None, labeled=True)
    assert corpus.labels == names
    assert {item for item, _ in corpus.val} == {t for t, _ in pairs[200:250]}
    assert abs(len(corpus.test) - 20) <= 2 and not {item for item, _ in corpus.test} & {t for t, _ in pairs[250:]}


def test_tables_that_cannot_be_classified_are_refused_in_one_line(tmp_path):
    import datasets

    floats = tmp_path / "scores.csv"
    datasets.Dataset.from_list([{"text": t, "label": random.Random(i).random()}
                                for i, (t, _) in enumerate(sentences(50))]).to_csv(str(floats))
    assert_user_error(run("train", "--model", "classifier", "--data", floats, "--out-dir", tmp_path),
                      "holds decimal numbers", "--label-column")
    one = tmp_path / "one.csv"
    datasets.Dataset.from_list([{"text": t, "label": "x"} for t, _ in sentences(50)]).to_csv(str(one))
    assert_user_error(run("train", "--model", "classifier", "--data", one, "--out-dir", tmp_path), "one class only")
    cols = tmp_path / "cols.csv"
    datasets.Dataset.from_list([{"body": t, "label": lab} for t, lab in sentences(50)]).to_csv(str(cols))
    assert_user_error(run("train", "--model", "classifier", "--data", cols, "--out-dir", tmp_path),
                      "no column 'text'", "--text-column")
    whole = tmp_path / "whole.csv"
    datasets.Dataset.from_list([{"text": t, "label": float(i % 2)} for i, (t, _) in enumerate(sentences(50))]).to_csv(
        str(whole))
    corpus = load_corpus(DataConfig(data=str(whole)), lambda _: None, labeled=True)
    assert corpus.labels == ["0", "1"]  # whole numbers read as floats are classes
    empty = tmp_path / "empty.tsv"
    empty.write_text("a\thello\nb\t \n", encoding="utf-8")
    assert_user_error(run("train", "--model", "classifier", "--data", empty, "--out-dir", tmp_path), "line 2")
    assert not list(tmp_path.glob("classifier-*"))


# -- the baseline ---------------------------------------------------------------------------------

def test_the_ngram_baseline_from_the_command_line_and_the_library(sentence_file):
    pytest.importorskip("sklearn")
    import makemore as mm

    result = run("baseline", "--data", sentence_file)
    assert result.exit_code == 0, result.output
    assert "character 1-4-gram TF-IDF + logistic regression (C=3): 480 train items" in result.output
    assert "test accuracy" in result.output
    figures = mm.baseline(sentence_file, c=10)
    assert figures["test_accuracy"] > 0.9  # the topic is in the opening words
    assert figures["train_items"] == 480 and figures["model"].endswith("(C=10)")
    with pytest.raises(MakemoreError, match="has no option"):
        mm.baseline(sentence_file, nonsense=1)
    assert_user_error(run("baseline", "--data", sentence_file, "--ngrams", "4,1"), "--ngrams")


def test_transfer_pretrains_on_other_text_and_reports_the_baseline_beside_each_share(tmp_path, prose_lm,
                                                                                     sentence_file):
    pytest.importorskip("sklearn")
    _, text = prose_lm
    out = tmp_path / "transfer"
    result = run("transfer", "--data", sentence_file, "--pretrain-data", text, "--fractions", "0.1,1", "--seeds", 1,
                 "--pretrain-steps", 10, "--max-steps", 10, "--eval-interval", 10, "--n-embd", 8, "--n-hidden", 16,
                 "--batch-size", 16, "--device", "cpu", "--out-dir", out)
    assert result.exit_code == 0, result.output
    rows = (out / "transfer.csv").read_text().splitlines()
    assert sum(",n-gram baseline," in row for row in rows) == 2
    table = (out / "transfer.md").read_text()
    assert "n-gram baseline accuracy" in table and "pretrained - baseline (points)" in table
    config = json.loads((out / "lm" / "config.json").read_text())
    assert config["data"]["data"] == str(text) and config["data"]["kind"] == "stream"
