import io
import sys

import pytest
import torch
from conftest import SHARED, needs_shared

from makemore.config import DataConfig
from makemore.data import (
    Corpus,
    LineBatches,
    StreamBatches,
    load_corpus,
    make_batches,
    noised,
    resolve,
    title,
)
from makemore.data.batches import char_frequencies
from makemore.data.corpus import guess_kind
from makemore.errors import MakemoreError
from makemore.evaluate import evaluate
from makemore.models import build_model, model_config
from makemore.models.mlp import context_windows
from makemore.tokenizer import IGNORE, CharTokenizer


def test_line_corpus_is_deduplicated_and_split_without_overlap(tmp_path):
    path = tmp_path / "items.txt"
    path.write_text("\n".join([f"item{i}" for i in range(100)] * 2) + "\n\n  \n", encoding="utf-8")
    said = []
    corpus = load_corpus(DataConfig(data=str(path)), log=said.append)
    assert corpus.kind == "lines"
    assert "data: 200 lines, 100 distinct: each is kept once, so none is in two splits" in said
    assert (len(corpus.train), len(corpus.val), len(corpus.test)) == (80, 10, 10)
    assert not set(corpus.train) & set(corpus.val) and not set(corpus.train) & set(corpus.test)
    assert set(corpus.train + corpus.val + corpus.test) == {f"item{i}" for i in range(100)}
    again = load_corpus(DataConfig(data=str(path)), log=lambda _: None)
    assert again.val == corpus.val  # the split depends on the seed alone
    other = load_corpus(DataConfig(data=str(path), split_seed=7), log=lambda _: None)
    assert other.val != corpus.val


def test_reversed_batches_read_items_and_prose_right_to_left():
    tok = CharTokenizer.from_text("abcdefgh\n")
    lines = make_batches(Corpus("lines", ["abc", "de"], ["fgh"], []), tok, "cpu", reverse=True)
    assert tok.decode(lines["train"].x[0, 1:].tolist()) == "cba" and tok.decode(lines["val"].x[0, 1:].tolist()) == "hgf"
    assert tok.decode(lines["train"].y[1, :2].tolist()) == "ed"
    text = "abcdefgh\n" * 4
    stream = make_batches(Corpus("stream", text, text, ""), tok, "cpu", seq_len=8, reverse=True)
    x, y = stream["train"].windows(torch.tensor([0]))
    assert tok.decode(x[0].tolist()) == text[::-1][:8] and tok.decode(y[0].tolist()) == text[::-1][1:9]


@needs_shared
@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-be-bom", "utf-32", "latin-1"])
def test_files_from_other_editors_read_the_same(tmp_path, encoding):
    # a byte-order mark (Windows editors, and every UTF-16 file) is not a character of the data
    path = tmp_path / "names.txt"
    text = "anna\r\nbob\r\ncleo\r\ndora\r\nemil\r\n"
    path.write_bytes(b"\xfe\xff" + text.encode("utf-16-be") if encoding == "utf-16-be-bom" else text.encode(encoding))
    names = ["anna", "bob", "cleo", "dora", "emil"]
    read_as = "utf-8" if encoding == "utf-8-sig" else encoding
    if encoding != "utf-16-be-bom":
        corpus = load_corpus(DataConfig(data=str(path), encoding=read_as, kind="lines"), log=lambda _: None)
        assert sorted(corpus.train + corpus.val + corpus.test) == names
    if encoding != "latin-1":  # the default, UTF-8, reads a file whose byte-order mark says it is UTF-16 or -32 so
        corpus = load_corpus(DataConfig(data=str(path), kind="lines"), log=lambda _: None)
        assert sorted(corpus.train + corpus.val + corpus.test) == names


@needs_shared
def test_stream_corpus_is_cut_in_order():
    corpus = load_corpus(DataConfig(data="shakespeare"), log=lambda _: None)
    text = (SHARED / "tinyshakespeare.txt").read_text(encoding="utf-8")
    assert corpus.kind == "stream"
    assert "".join(map(str, (corpus.train, corpus.val, corpus.test))) == text
    assert len(corpus.val) == round(0.1 * len(text))


def test_kind_is_guessed_from_the_text():
    names, more_names = "emma\nolivia\nava\n", "liam\nnoah\n"
    prose = "First Citizen:\nBefore we proceed.\n\nAll:\nSpeak.\n"
    assert guess_kind([names]) == "lines"
    assert guess_kind([names, more_names]) == "lines"  # rows of a dataset, or files that end with a newline
    assert guess_kind([names, more_names], folder=True) == "labeled"  # a folder of <label>.txt lists
    assert guess_kind([prose]) == "stream"
    assert guess_kind([prose, prose], folder=True) == "stream"
    assert guess_kind(["x" * 300]) == "stream"
    many_names = "\n".join(f"name{i}" for i in range(200))
    assert guess_kind([many_names + "\n\n" + many_names]) == "lines"  # one stray blank line in 400 names
    assert guess_kind([many_names + "\n" + "x" * 300 + "\n" + many_names]) == "stream"  # a list pads to its longest
    assert guess_kind([many_names.replace("9\n", "9\n\n")]) == "stream"  # a blank line in every 10: paragraphs


def test_first_windows_of_a_known_word():
    tok = CharTokenizer.from_text(["emma"])
    batches = LineBatches(["emma"], tok, "cpu")
    x, y = next(batches.iter_all(8))
    e, m, a = tok.encode("ema")
    assert x.tolist() == [[0, e, m, m, a]]
    assert y.tolist() == [[e, m, m, a, 0]]
    windows = context_windows(x, block_size=3)[0].tolist()
    assert list(zip(map(tuple, windows), y[0].tolist())) == [
        ((0, 0, 0), e), ((0, 0, e), m), ((0, e, m), m), ((e, m, m), a), ((m, m, a), 0),
    ]


def test_line_batches_pad_targets_and_count_characters():
    tok = CharTokenizer.from_text(["ab", "abcde"])
    batches = LineBatches(["ab", "abcde"], tok, "cpu")
    assert batches.n_targets == 3 + 6
    x, y = next(batches.iter_all(8))
    assert x.shape == y.shape == (2, 6)
    assert (y != IGNORE).sum() == batches.n_targets
    x, y = batches._rows(torch.tensor([0]))
    assert x.shape == (1, 3)  # padding that no row needs is trimmed


def test_input_noise_replaces_characters_by_their_frequency_and_never_the_boundary():
    tok = CharTokenizer.from_text(["ab", "abcde"])
    batches = LineBatches(["aab"] * 3 + ["abcde"], tok, "cpu")
    frequencies = batches.char_frequencies()
    a, b, c = tok.encode("abc")
    assert frequencies[0] == 0 and frequencies[a] == 7 and frequencies[b] == 4 and frequencies[c] == 1
    x = batches.x.repeat(2000, 1)
    torch.manual_seed(0)
    out = noised(x, 0.2, frequencies)
    assert torch.equal(out == 0, x == 0)  # the start token and the padding stay; no character becomes them
    changed = (out != x).float().sum() / (x != 0).sum()
    # a hit redraws the character it hits with its own frequency, so 0.2 * (1 - sum of squared shares) change
    shares = frequencies / frequencies.sum()
    assert float(changed) == pytest.approx(0.2 * (1 - float((shares ** 2).sum())), abs=0.01)
    drawn = out[out != x]
    assert (drawn == a).float().mean() > (drawn == c).float().mean()  # drawn as often as they occur
    assert torch.equal(noised(x, 0.0, frequencies), x)
    assert char_frequencies(torch.tensor([[0, 0, 3]]))[0] == 0


@pytest.mark.parametrize("warmup", [0, 2])
def test_stream_evaluation_scores_every_character_once_with_full_context(warmup):
    text = "the quick brown fox jumps over the lazy dog"
    tok = CharTokenizer.from_text(text)
    batches = StreamBatches(text, tok, "cpu", seq_len=8, warmup=warmup)
    ids = tok.encode(text)
    scored = []
    for x, y in batches.iter_all(2):
        assert x.shape == (x.shape[0], warmup + 8)
        for row_x, row_y in zip(x.tolist(), y.tolist()):
            for t, target in enumerate(row_y):
                if target != IGNORE:
                    # the k-th scored target is ids[k+1]; its context is ids[k-warmup..k], boundary-padded
                    k = len(scored)
                    expected = [0] * max(0, warmup - k) + ids[max(0, k - warmup):k + 1]
                    assert t >= warmup and row_x[t - warmup:t + 1] == expected
                    scored.append(target)
    assert scored == ids[1:]
    assert batches.n_targets == len(ids) - 1


def test_stream_training_batches_are_shifted_by_one():
    text = "abcdefghijklmnopqrstuvwxyz" * 4
    tok = CharTokenizer.from_text(text)
    batches = StreamBatches(text, tok, "cpu", seq_len=10, warmup=3)
    x, y = batches.sample(16, torch.Generator().manual_seed(0))
    assert (y[:, :3] == IGNORE).all()
    assert torch.equal(y[:, 3:-1], x[:, 4:])


def test_hugging_face_path_on_local_files(tmp_path, capfd):
    import datasets

    folder = tmp_path / "hfdata"
    folder.mkdir()
    (folder / "train.csv").write_text("id,name\n1,anna\n2,bob\n3,cleo\n4,dora\n5,emil\n", encoding="utf-8")
    capfd.readouterr()
    corpus = load_corpus(DataConfig(data=f"hf:{folder}", text_column="name", kind="lines"), log=lambda _: None)
    assert sorted(corpus.train + corpus.val + corpus.test) == ["anna", "bob", "cleo", "dora", "emil"]
    out, err = capfd.readouterr()
    assert "Generating" not in out + err  # no progress bar for reading a local file
    assert not datasets.are_progress_bars_disabled()  # and downloads keep theirs
    with pytest.raises(MakemoreError, match="no column 'text'.*--text-column"):
        load_corpus(DataConfig(data=f"hf:{folder}"), log=lambda _: None)


def test_a_table_file_is_read_as_a_dataset_with_or_without_hf(tmp_path):
    import datasets

    names = ["anna", "bob", "cleo", "dora", "emil"]
    table = datasets.Dataset.from_dict({"id": list(range(5)), "name": names})
    table.to_csv(str(tmp_path / "names.csv"), index=False)
    table.to_json(str(tmp_path / "names.jsonl"))
    table.to_parquet(str(tmp_path / "names.parquet"))
    for file in ("names.csv", "names.jsonl", "names.parquet"):
        for data in (str(tmp_path / file), f"hf:{tmp_path / file}"):
            cfg = DataConfig(data=data, text_column="name", kind="lines")
            corpus = load_corpus(cfg, log=lambda _: None)
            assert corpus.config.data == f"hf:{tmp_path / file}"  # the column, not the file's lines ("1,bob")
            assert sorted(corpus.train + corpus.val + corpus.test) == names
    with pytest.raises(MakemoreError, match="no column 'text' .it has: id, name.; pass --text-column"):
        load_corpus(DataConfig(data=str(tmp_path / "names.csv")), log=lambda _: None)


def test_a_run_keeps_the_data_it_recorded(tmp_path, trained_run):
    import json
    import shutil

    from makemore.runs import Run

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (tmp_path / "names.csv").write_text("emma\nolivia\n", encoding="utf-8")
    config = json.loads((run / "config.json").read_text())
    config["data"]["data"] = str(tmp_path / "names.csv")  # as a makemore that read a .csv file's lines recorded it
    (run / "config.json").write_text(json.dumps(config))
    assert Run.open(run).data_config.data == str(tmp_path / "names.csv")  # not hf:, which reads it as a table


@pytest.mark.parametrize("as_dict", [False, True])
def test_hugging_face_path_on_a_dataset_saved_to_disk(tmp_path, as_dict):
    import datasets

    dataset = datasets.Dataset.from_dict({"name": ["anna", "bob", "cleo", "dora", "emil"]})
    (datasets.DatasetDict(train=dataset) if as_dict else dataset).save_to_disk(str(tmp_path / "saved"))
    corpus = load_corpus(DataConfig(data=f"hf:{tmp_path / 'saved'}", text_column="name", kind="lines"),
                         log=lambda _: None)
    assert sorted(corpus.train + corpus.val + corpus.test) == ["anna", "bob", "cleo", "dora", "emil"]


def test_a_table_at_a_url_is_read_as_a_table(monkeypatch, tmp_path):
    source = tmp_path / "elsewhere" / "names.csv"
    source.parent.mkdir()
    source.write_text("id,name\n1,anna\n2,bob\n3,cleo\n4,dora\n5,emil\n", encoding="utf-8")
    cfg = DataConfig(data=source.as_uri(), text_column="name", kind="lines")
    assert resolve(cfg).data == "hf:" + source.as_uri() and title(cfg) == "names.csv"
    with pytest.raises(MakemoreError, match=r"the data \(file://.*\) is not cached and downloads are off"):
        load_corpus(cfg, log=lambda _: None)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("MAKEMORE_OFFLINE", raising=False)
    corpus = load_corpus(cfg, log=lambda _: None)
    assert sorted(corpus.train + corpus.val + corpus.test) == ["anna", "bob", "cleo", "dora", "emil"]  # not "1,anna"
    source.unlink()  # read from the cache now
    assert load_corpus(cfg, log=lambda _: None).train == corpus.train


def test_data_at_a_url_is_downloaded_once_and_read_from_the_cache(monkeypatch, tmp_path):
    source = tmp_path / "elsewhere" / "words.txt"
    source.parent.mkdir()
    source.write_text("anna\nbob\ncleo\ndora\nemil\n", encoding="utf-8")
    url = source.as_uri()  # file://: the download path without a network
    cfg = DataConfig(data=url)
    with pytest.raises(MakemoreError, match=r"the data \(file://.*\) is not cached and downloads are off.*--data PATH"):
        load_corpus(cfg, log=lambda _: None)  # the tests run offline
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("MAKEMORE_OFFLINE", raising=False)
    corpus = load_corpus(cfg, log=lambda _: None)
    assert sorted(corpus.train + corpus.val + corpus.test) == ["anna", "bob", "cleo", "dora", "emil"]
    assert title(cfg) == "words.txt"
    source.unlink()  # read from the cache now
    assert load_corpus(cfg, log=lambda _: None).train == corpus.train
    with pytest.raises(MakemoreError, match="could not download the data from file://.*; check the URL"):
        load_corpus(DataConfig(data=url + ".gone"), log=lambda _: None)
    other = source.with_name("more.txt")
    other.write_text("anna\nbob\ncleo\n", encoding="utf-8")

    class Broken(io.BytesIO):  # the connection lost halfway
        def read(self, size=-1):
            if self.tell():
                raise ConnectionResetError("reset by peer")
            return super().read(2)

    monkeypatch.setattr("makemore.data.sources.urllib.request.urlopen", lambda url, timeout: Broken(b"anna\n"))
    with pytest.raises(MakemoreError,
                       match=r"the download of the data from file://.*more.txt broke off \(reset by peer\)"):
        load_corpus(DataConfig(data=other.as_uri()), log=lambda _: None)
    assert not list((tmp_path / "cache").rglob("more.txt*"))  # no partial file to be read as the data later


def test_missing_named_corpus_offline_says_what_to_pass(monkeypatch, tmp_path):
    monkeypatch.setenv("MAKEMORE_DATA", str(tmp_path))
    with pytest.raises(MakemoreError, match="not cached and downloads are off.*--data PATH"):
        load_corpus(DataConfig(data="shakespeare"), log=lambda _: None)


@needs_shared
def test_surnames_from_makemore_data_match_their_checksum():
    from makemore.data.sources import CORPORA, digest, resolve_named

    assert digest(resolve_named("surnames")) == CORPORA["surnames"].sha256
    assert digest(resolve_named("shakespeare")) == CORPORA["shakespeare"].sha256


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_evaluation_shows_its_progress_on_a_terminal_only_and_scores_the_same(monkeypatch):
    text = "the quick brown fox jumps over the lazy dog. " * 20
    tok = CharTokenizer.from_text(text)
    batches = StreamBatches(text, tok, "cpu", seq_len=16)
    model = build_model("lstm", model_config("lstm", vocab_size=tok.vocab_size, n_embd=8, n_hidden=16, n_layer=1))
    quiet = evaluate(model, batches, 4)
    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    assert evaluate(model, batches, 4, progress="val") == quiet
    assert "val:   0%|" in screen.getvalue() and f"/{batches.n_targets} " in screen.getvalue()  # then cleared
    piped = io.StringIO()  # not a terminal: no bar
    monkeypatch.setattr(sys, "stderr", piped)
    evaluate(model, batches, 4, progress="val")
    assert piped.getvalue() == ""


def test_the_digest_of_a_corpus_changes_with_its_splits_only(tmp_path):
    from makemore.data import LabeledCorpus
    from makemore.text import Text

    lines = Corpus("lines", ["ab", "cd"], ["ef"], ["gh"])
    assert lines.digest() == Corpus("lines", ["ab", "cd"], ["ef"], ["gh"]).digest()
    assert lines.digest() != Corpus("lines", ["ab"], ["cd", "ef"], ["gh"]).digest()  # an item moved to another split
    assert lines.digest() != Corpus("lines", ["ab", "cd"], ["ef"], ["gx"]).digest()
    text = Text.of("hello world, hello")
    prose = Corpus("stream", text[:12], text[12:15], text[15:])
    assert (
        prose.digest()
        == Corpus("stream", *(Text.of("hello world, hello")[a:b] for a, b in [(0, 12), (12, 15), (15, None)])).digest()
    )
    assert prose.digest() != Corpus("stream", text[:11], text[11:15], text[15:]).digest()
    # the same ids, another text: chars differ
    other = Text.of("jello world, jello")
    assert prose.digest() != Corpus("stream", other[:12], other[12:15], other[15:]).digest()
    assert prose.digest() == Corpus("stream", text[:12], text[12:15], text[15:]).digest()
    pairs = LabeledCorpus(["a", "b"], [("x", 0)], [("y", 1)], [("z", 0)])
    assert pairs.digest() != LabeledCorpus(["a", "b"], [("x", 1)], [("y", 1)], [("z", 0)]).digest()  # a label changed
    assert pairs.digest() != LabeledCorpus(["a", "b"], [("x", 0)], [("y", 1)], [("z", 0)], [("w", 1)]).digest()


def test_a_run_whose_data_has_changed_is_refused(tmp_path, words_file):
    from conftest import assert_user_error, run, snapshot, tiny_args

    result = run("train", "--data", words_file, "--out-dir", tmp_path, "--name", "r",
                 *tiny_args(max_steps=20, eval_interval=10))
    assert result.exit_code == 0, result.output
    original = words_file.read_text(encoding="utf-8")
    assert run("eval", "--run", tmp_path / "r").exit_code == 0
    words_file.write_text(original + "kalomira\n", encoding="utf-8")  # one more word reshuffles every split
    before = snapshot(tmp_path / "r")
    for args in [("eval", "--run", tmp_path / "r"), ("sample", "--run", tmp_path / "r", "--unique"),
                 ("train", "--resume", "--name", "r", "--out-dir", tmp_path, "--max-steps", 40)]:
        assert_user_error(run(*args), f"the data of {tmp_path / 'r'} ({words_file}) has changed since the run was "
                                      "trained")
    assert snapshot(tmp_path / "r") == before  # nothing trained on the other split
    assert run("eval", "--run", tmp_path / "r", "--data", words_file).exit_code == 0  # scoring the file itself is fine
    words_file.write_text(original, encoding="utf-8")
    resumed = run("train", "--resume", "--name", "r", "--out-dir", tmp_path, "--max-steps", 40)
    assert resumed.exit_code == 0, resumed.output  # the data put back as it was: the run goes on
