"""Prose read in chunks, encoded to compact ids, and (when large) memory-mapped from the cache."""
import json

import numpy as np
import pytest
import torch
from conftest import assert_user_error, run, tiny_args

from makemore.config import DataConfig
from makemore.data import StreamBatches, load_corpus, make_batches, sources
from makemore.data.sources import decoded_chunks
from makemore.errors import MakemoreError
from makemore.text import Text
from makemore.tokenizer import CharTokenizer

TEXT = "\ufeffÉté à Kyōto,\r\nthe end.\rNext line\r\n\r\n日本語 prose\n"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "latin-1"])
@pytest.mark.parametrize("chunk_bytes", [1, 2, 3, 7, 1 << 24])
def test_chunks_read_a_file_as_a_whole_read_does(tmp_path, encoding, chunk_bytes):
    text = TEXT if encoding != "latin-1" else TEXT.replace("\ufeff", "").replace("ō", "o").replace("日本語", "abc")
    path = tmp_path / "prose.txt"
    path.write_bytes(text.encode(encoding))
    whole = path.read_bytes().decode(encoding).removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    assert "".join(decoded_chunks(path, encoding, chunk_bytes)) == whole
    assert "\r" not in whole and not whole.startswith("\ufeff")


@pytest.mark.parametrize("chunk_bytes", [1, 2, 5, 1 << 24])
def test_an_invalid_byte_is_named_at_its_offset_whatever_the_chunk(tmp_path, chunk_bytes):
    path = tmp_path / "prose.txt"
    path.write_bytes("déjà vu ".encode() + b"caf\xe9 au lait")
    with pytest.raises(MakemoreError, match=r"not valid utf-8 \(byte 0xe9 at offset 13\); pass --encoding"):
        "".join(decoded_chunks(path, "utf-8", chunk_bytes))


def windows(corpus, tokenizer, reverse=False, context_size=None):
    """Every batch a split gives, drawn and whole, and the train split's character frequencies."""
    batches = make_batches(corpus, tokenizer, "cpu", 16, context_size, reverse=reverse)
    generator = torch.Generator().manual_seed(0)
    drawn = [batches["train"].sample(8, generator) for _ in range(3)]
    whole = [pair for split in batches.values() for pair in split.iter_all(5)]
    return [t for pair in drawn + whole for t in pair] + [batches["train"].char_frequencies()]


def test_large_prose_is_encoded_once_then_mapped_and_reads_as_it_does_in_memory(tmp_path, prose_file, monkeypatch):
    cfg = DataConfig(data=str(prose_file))
    in_memory = load_corpus(cfg, log=lambda _: None)
    assert not isinstance(in_memory.train.ids, np.memmap) and in_memory.train.ids.dtype == np.uint8
    monkeypatch.setattr(sources, "MAP_BYTES", 1)
    said = []
    mapped = load_corpus(cfg, log=said.append)
    assert any("is large; encoding it once into" in line for line in said)
    assert all(isinstance(part.ids, np.memmap) for part in mapped.splits().values())
    folders = list((tmp_path / "cache" / "text").iterdir())
    assert len(folders) == 1 and json.loads((folders[0] / "text.json").read_text())["length"] == len(
        prose_file.read_text()
    )
    said.clear()
    again = load_corpus(cfg, log=said.append)
    assert not any("encoding" in line for line in said)  # read from the cache
    assert mapped.chars() == in_memory.chars() == "".join(sorted(set(prose_file.read_text())))
    assert "".join(str(part) for part in again.splits().values()) == prose_file.read_text()
    tokenizer = CharTokenizer(in_memory.chars())
    for reverse, context in ((False, None), (True, None), (False, 4)):
        ours, theirs = windows(mapped, tokenizer, reverse, context), windows(in_memory, tokenizer, reverse, context)
        assert all(torch.equal(a, b) for a, b in zip(ours, theirs))


def test_the_cache_follows_the_content_and_the_encoding(tmp_path, prose_file, monkeypatch):
    monkeypatch.setattr(sources, "MAP_BYTES", 1)
    cache = tmp_path / "cache" / "text"
    before = load_corpus(DataConfig(data=str(prose_file)), log=lambda _: None)
    load_corpus(DataConfig(data=str(prose_file), encoding="latin-1"), log=lambda _: None)
    assert len(list(cache.iterdir())) == 2
    old_text = str(before.test)
    prose_file.write_text(prose_file.read_text() + "A new line.\n", encoding="utf-8")
    said = []
    corpus = load_corpus(DataConfig(data=str(prose_file)), log=said.append)
    test_text = str(corpus.test)
    assert test_text.endswith("A new line.\n")
    # the earlier version's entry is removed (the latin-1 reading stays), and a job that maps it reads on
    assert len(list(cache.iterdir())) == 2 and any("the encoded text of an earlier version of" in line for line in said)
    assert str(before.test) == old_text
    del corpus, before
    entry = next(
        p for p in cache.iterdir() if json.loads((p / "text.json").read_text())["length"] == len(prose_file.read_text())
    )
    with open(entry / "ids.bin", "r+b") as f:  # a damaged entry (cut short) is encoded again
        f.truncate(10)
    said = []
    again = load_corpus(DataConfig(data=str(prose_file)), log=said.append)
    assert any("encoding it once" in line for line in said) and str(again.test) == test_text


def test_an_unwritable_cache_is_a_one_line_error_and_training_leaves_nothing(tmp_path, prose_file, monkeypatch):
    monkeypatch.setattr(sources, "MAP_BYTES", 1)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("MAKEMORE_CACHE", str(blocker))
    with pytest.raises(MakemoreError, match="could not write the encoded text of .* set MAKEMORE_CACHE"):
        load_corpus(DataConfig(data=str(prose_file)), log=lambda _: None)
    result = run("train", "--data", prose_file, "--out-dir", tmp_path / "runs", "--name", "p", *tiny_args(max_steps=5))
    assert_user_error(result, "could not write the encoded text")
    assert not (tmp_path / "runs" / "p").exists()


def test_an_unknown_encoding_of_large_prose_is_a_one_line_error(tmp_path, prose_file, monkeypatch):
    monkeypatch.setattr(sources, "MAP_BYTES", 1)
    result = run("train", "--data", prose_file, "--kind", "stream", "--encoding", "nope", "--out-dir", tmp_path,
                 *tiny_args(max_steps=5))
    assert_user_error(result, "unknown encoding 'nope'; pass a Python codec name such as utf-8 or latin-1")


def test_a_split_may_hold_characters_of_the_text_that_a_tokenizer_lacks_only_where_it_reads_them():
    text = Text.of("abcabcabc" + "xyz")
    tokenizer = CharTokenizer.from_text("abc")  # as if trained before x, y and z were added at the end
    head = StreamBatches(text[:9], tokenizer, "cpu", seq_len=4)
    x, _ = next(head.iter_all(10))
    assert x[0, :4].tolist() == tokenizer.encode("abca") and head.char_frequencies().tolist() == [0, 3, 3, 3]
    with pytest.raises(MakemoreError, match=r"character 'x' \(U\+0078 LATIN SMALL LETTER X\) in the test split"):
        StreamBatches(text[7:], tokenizer, "cpu", seq_len=4, what="the test split")


def test_train_resume_eval_and_sample_on_mapped_prose_give_what_they_give_in_memory(tmp_path, prose_file, monkeypatch):
    args = ["--model", "lstm", *tiny_args(max_steps=30, seq_len=16, eval_interval=10)]
    assert run("train", "--data", prose_file, "--out-dir", tmp_path, "--name", "mem", *args).exit_code == 0
    monkeypatch.setattr(sources, "MAP_BYTES", 1)
    result = run("train", "--data", prose_file, "--out-dir", tmp_path, "--name", "map", *args)
    assert result.exit_code == 0, result.output
    metrics = [json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("mem", "map")]
    assert metrics[0]["test_loss"] == metrics[1]["test_loss"] and metrics[0]["val_loss"] == metrics[1]["val_loss"]
    for extra in ([], ["--data", prose_file]):
        scored = [run("eval", "--run", tmp_path / name, *extra).stdout for name in ("mem", "map")]
        assert scored[0] == scored[1] and "nats/char" in scored[0]
    sampled = run("sample", "--run", tmp_path / "map", "-n", 2, "--max-len", 30, "--prefix", "To", "--seed", 0)
    assert sampled.exit_code == 0 and sampled.stdout.startswith("To")
    result = run("train", "--resume", "--out-dir", tmp_path, "--name", "map", "--max-steps", "40")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "map" / "metrics.json").read_text())["steps"] == 40


def test_the_train_figure_of_a_long_text_reads_windows_spread_over_it(tmp_path, prose_file, monkeypatch):
    from makemore import tasks
    from makemore.data import batches as batches_module

    text = Text.of(prose_file.read_text())
    batches = StreamBatches(text, CharTokenizer(text.chars), "cpu", seq_len=16)
    assert batches.spread(batches.n_targets) is batches
    part = batches.spread(160)
    windows = list(part.iter_all(4))
    assert part.n_targets == 160 and sum(int((y != -1).sum()) for _, y in windows) == 160 and len(windows) == 3
    first, last = int(part.starts[0]), int(part.starts[-1])
    assert first == 0 and last == len(text) - 1 - 16  # from the start of the text to its end
    monkeypatch.setattr(batches_module, "LONG_SPLIT_CHARS", 320)
    scored, evaluate = [], tasks.evaluate

    def counted(model, split, *args, **kwargs):
        scored.append(split.n_targets)
        return evaluate(model, split, *args, **kwargs)

    monkeypatch.setattr(tasks, "evaluate", counted)
    result = run("train", "--data", prose_file, "--out-dir", tmp_path, "--name", "p", "--model", "lstm",
                 *tiny_args(max_steps=10, seq_len=16))
    assert result.exit_code == 0, result.output
    corpus = load_corpus(DataConfig(data=str(prose_file)), log=lambda _: None)
    # validations read all of val; metrics.json reads 320 characters of train, then all of val and test
    assert scored[-3:] == [320, len(corpus.val) - 1, len(corpus.test) - 1] and len(corpus.train) > 320
    assert 0 < json.loads((tmp_path / "p" / "metrics.json").read_text())["train_loss"] < 5
    assert (f"every validation reads all {len(corpus.val):,} characters of the val split; "
            "pass a smaller --val-frac (now 0.1)") in result.output


def test_prose_from_a_hugging_face_dataset_is_mapped_when_large_and_reads_as_in_memory(tmp_path, prose_file,
                                                                                       monkeypatch):
    import datasets

    rows = prose_file.read_text().split("\n")[:400]
    saved = tmp_path / "saved"
    datasets.Dataset.from_dict({"body": rows[:200] + [None] + rows[200:]}).save_to_disk(str(saved))
    cfg = DataConfig(data=f"hf:{saved}", text_column="body", kind="stream")
    in_memory = load_corpus(cfg, log=lambda _: None)
    assert not isinstance(in_memory.train.ids, np.memmap)
    assert "".join(str(part) for part in in_memory.splits().values()) == "\n".join(rows)  # the empty row is no line
    monkeypatch.setattr(sources, "MAP_BYTES", 1)
    said = []
    mapped = load_corpus(cfg, log=said.append)
    assert any("is large; encoding it once into" in line for line in said)
    assert all(isinstance(part.ids, np.memmap) for part in mapped.splits().values())
    tokenizer = CharTokenizer(in_memory.chars())
    assert all(torch.equal(a, b) for a, b in zip(windows(mapped, tokenizer), windows(in_memory, tokenizer)))
    said.clear()
    guessed = load_corpus(DataConfig(data=f"hf:{saved}", text_column="body"), log=said.append)  # --kind auto
    assert any("read as stream" in line for line in said) and not any("encoding" in line for line in said)
    assert str(guessed.test) == str(in_memory.test)
    with pytest.raises(MakemoreError, match="no column 'text'.*--text-column"):
        load_corpus(DataConfig(data=f"hf:{saved}", kind="stream"), log=lambda _: None)


def test_an_edited_hugging_face_dataset_is_encoded_again(tmp_path, prose_file, monkeypatch):
    monkeypatch.setattr(sources, "MAP_BYTES", 1)
    folder = tmp_path / "hfdata"
    folder.mkdir()
    (folder / "train.txt").write_text(prose_file.read_text())
    cfg = DataConfig(data=f"hf:{folder}", kind="stream")
    before = str(load_corpus(cfg, log=lambda _: None).test)
    (folder / "train.txt").write_text(prose_file.read_text() + "A new line.\n")
    after = str(load_corpus(cfg, log=lambda _: None).test)
    assert before != after and after.endswith("A new line.")
    assert len(list((tmp_path / "cache" / "text").iterdir())) == 1
