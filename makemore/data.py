"""Corpora: where text comes from, how it is split, and how batches are drawn from it.

A source is a local file or folder, `hf:<dataset>[:<config>]` (Hugging Face `datasets`), or a
short name from CORPORA. A *lines* corpus holds one item per line (names, words): items are
de-duplicated and shuffled into train / val / test from a seed, so no item is in two splits.
A *stream* corpus is one long text (prose), cut into contiguous train / val / test parts; it is
held as compact character ids (makemore.text), and a source of MAP_BYTES or more (local files, or
a dataset's text column) is encoded once into the cache and memory-mapped from there, so it may be
larger than memory.
A *labeled* corpus pairs items with labels (a folder of `<label>.txt` files, or `label<TAB>text`
lines): (item, label) pairs are de-duplicated and split per label (stratified), an item with two
labels keeping both in one split. A language model trained on a labeled corpus reads its items
in that same split, so pretraining never sees a classifier's val or test items.

Batches come from tensors that live on the training device; only the few random indices of a
batch are made on the CPU, so drawing a batch costs no host-to-device copy of data. A
memory-mapped text stays on the CPU, and each batch's windows are copied to the device.
"""
import codecs
import contextlib
import copy
import hashlib
import io
import json
import os
import random
import shutil
import urllib.parse
import urllib.request
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from makemore.config import check_choice, check_fraction, check_non_negative, check_positive
from makemore.errors import MakemoreError
from makemore.text import Text, encode
from makemore.tokenizer import BOUNDARY, chars_of

IGNORE = -1  # target id that the loss skips: padding after an item, context-only positions
MAX_ITEM_LEN = 2000  # longer lines belong to prose: a line corpus pads every item to its longest
CHUNK_BYTES = 1 << 24  # files are read in pieces of this size
MAP_BYTES = 1 << 26  # prose this large is encoded once into the cache and memory-mapped from there
GUESS_BYTES = 1 << 20  # --kind auto reads this much of each file (or of the first rows) of such a source
TEXT_FORMAT = 1  # of the encoded texts in the cache
TABLE_FILES = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}  # suffix -> datasets' reader

# ----------------------------------------------------------------------------------------------
# configuration


@dataclass
class DataConfig:
    data: str = field(default="names", metadata={"help": "a text file or folder, hf:<dataset>[:<config>], or a corpus name: names, names-sex (labeled), shakespeare, surnames (labeled)"})
    kind: str = field(default="auto", metadata={"help": "lines (one item per line), stream (prose), labeled (label<TAB>item lines or a folder of <label>.txt), or auto (guess and say so)", "choices": ["auto", "lines", "stream", "labeled"]})
    encoding: str = field(default="utf-8", metadata={"help": "text encoding of local files, e.g. latin-1"})
    text_column: str = field(default="text", metadata={"help": "column that holds the text in a Hugging Face dataset"})
    val_frac: float = field(default=0.1, metadata={"help": "share of the corpus held out for validation"})
    test_frac: float = field(default=0.1, metadata={"help": "share of the corpus held out for the final test"})
    split_seed: int = field(default=42, metadata={"help": "seed of the train/val/test split (kept apart from the training seed)"})
    seq_len: int = field(default=128, metadata={"help": "stream corpora: characters predicted per training sequence"})
    label_column: str = field(default="label", metadata={"help": "column that holds the label in a Hugging Face dataset (classifiers)"})
    label_frac: float = field(default=1.0, metadata={"help": "classifiers: share of the train split's labels to train on, picked per label (the rest go unused)"})
    label_seed: int = field(default=0, metadata={"help": "classifiers: seed that picks the labels of --label-frac"})
    reverse: bool = field(default=False, metadata={"help": "language models: read each item (or the prose) right to left; a backward model's body gives a classifier a second direction (finetune --backward)"})
    min_char_count: int = field(default=0, metadata={"help": "characters seen fewer times than this in the train split share one unknown-character id, as do characters the run meets later (eval --data, classify, --prefix); 0: every character of the data has its own id and a new one is an error"})

    def __post_init__(self):
        check_choice(self, "kind")
        check_positive(self, "seq_len")
        check_non_negative(self, "min_char_count")
        check_fraction(self, "val_frac", "test_frac")
        if self.val_frac == 0:
            raise MakemoreError("--val-frac must be above 0: training keeps the model with the best loss on the val split; "
                                "pass e.g. --val-frac 0.1")
        if self.val_frac + self.test_frac >= 1:
            raise MakemoreError(f"--val-frac + --test-frac must be below 1 to leave a train split, got "
                                f"{self.val_frac} + {self.test_frac}; pass smaller shares, e.g. 0.1 each")
        if not 0 < self.label_frac <= 1:
            raise MakemoreError(f"--label-frac must be in (0, 1], got {self.label_frac}")
        if not self.data.strip():  # else it would be read as the current folder
            raise MakemoreError(f"--data is empty; pass a text file or folder, hf:<dataset>, or a corpus name: {', '.join(CORPORA)}")
        if self.data not in CORPORA and not self.data.startswith("hf:") and Path(self.data).exists():
            self.data = os.path.abspath(self.data)  # a run records it, and reads it again from any folder
            if table_reader(self.data):
                self.data = "hf:" + self.data  # a table, read by datasets: its --text-column, not its raw lines
        elif is_url(self.data) and table_kind(urllib.parse.urlparse(self.data).path):
            self.data = "hf:" + self.data  # a table at a URL, read (once downloaded) as a local one is

    @property
    def title(self):
        """The data's name in a plot title: a local file's or folder's own name (a table's too), else as given."""
        source = self.data.removeprefix("hf:")
        return Path(source).name if os.path.isabs(source) or is_url(source) else self.data


# ----------------------------------------------------------------------------------------------
# sources


@dataclass(frozen=True)
class NamedCorpus:
    file: str  # file or folder name, in MAKEMORE_DATA, the shipped data/ or the download cache
    kind: str
    about: str
    url: str | None = None  # None: shipped with the package
    sha256: str | None = None  # of the file, or of a folder's (name, bytes) pairs in name order


CORPORA = {
    "names": NamedCorpus("names.txt", "lines", "29,910 US baby names of 2017, shipped in data/"),
    "names-sex": NamedCorpus("names_sex.tsv", "labeled", "the same names labeled F or M (the sex with more births), shipped in data/"),
    "shakespeare": NamedCorpus(
        "tinyshakespeare.txt", "stream", "tiny Shakespeare, 1.1 MB of plays (char-rnn)",
        url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
    ),
    "surnames": NamedCorpus(
        "surnames", "labeled", "20,074 surnames in 18 languages (PyTorch tutorial data)",
        url="https://download.pytorch.org/tutorial/data.zip",
        sha256="500ec47220045a69cc4a201be3c16e74bf605f29204ce3b7a91a187cee1e3e26",
    ),
}


def shipped_dir():
    """data/ of a source checkout, or the copy that a wheel carries inside the package."""
    here = Path(__file__).resolve().parent
    for d in (here / "_data", here.parent / "data"):
        if (d / "names.txt").exists():
            return d
    return here.parent / "data"


def cache_dir():
    return Path(os.environ.get("MAKEMORE_CACHE", Path.home() / ".cache" / "makemore"))


def digest(path):
    """sha256 of a file, or of a folder's .txt files as (name, bytes) pairs in name order; read in chunks."""
    h, folder = hashlib.sha256(), path.is_dir()
    for p in sorted(path.glob("*.txt")) if folder else [path]:
        h.update(p.name.encode() + b"\0" if folder else b"")
        with open(p, "rb") as f:
            while chunk := f.read(CHUNK_BYTES):
                h.update(chunk)
        h.update(b"\0" if folder else b"")
    return h.hexdigest()


def offline():
    return any(os.environ.get(v, "") not in ("", "0") for v in ("MAKEMORE_OFFLINE", "HF_HUB_OFFLINE"))


def resolve_named(name):
    """Path of a named corpus: shipped ones from data/; others from MAKEMORE_DATA, the cache, or a download."""
    spec = CORPORA[name]
    if spec.url is None:
        path = shipped_dir() / spec.file
        if not path.exists():
            raise MakemoreError(f"the shipped corpus {spec.file} is missing from {shipped_dir()}; reinstall makemore")
        return path
    places = [Path(d) for d in os.environ.get("MAKEMORE_DATA", "").split(os.pathsep) if d] + [cache_dir()]
    for d in places:
        if (d / spec.file).exists():
            return d / spec.file
    hint = f"pass --data PATH to a local copy, or set MAKEMORE_DATA to a folder that holds {spec.file}"
    target = cache_dir() / spec.file
    with opened_url(spec.url, f"corpus '{name}'", hint) as response:
        payload = response.read()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".partial")
    if spec.url.endswith(".zip"):  # the PyTorch tutorial zip holds data/names/<Language>.txt
        tmp.mkdir(exist_ok=True)
        with zipfile.ZipFile(io.BytesIO(payload)) as z:
            for member in z.namelist():
                if member.startswith("data/names/") and member.endswith(".txt"):
                    (tmp / Path(member).name).write_bytes(z.read(member))
    else:
        tmp.write_bytes(payload)
    if digest(tmp) != spec.sha256:
        raise MakemoreError(f"the download of '{name}' from {spec.url} does not match its sha256; {hint}")
    tmp.rename(target)
    return target


def table_kind(name):
    """The datasets reader for a file name that ends as a table's (CSV, JSON lines, Parquet), or None."""
    return TABLE_FILES.get(Path(name).suffix.lower())


def table_reader(path):
    """The datasets reader of a local table file, or None for any other path."""
    return table_kind(path) if Path(path).is_file() else None


def is_url(source):
    return source.startswith(("http://", "https://", "file://"))


@contextlib.contextmanager
def opened_url(url, what, hint):
    """The response to a download of url, or the one-line error that says why there is none."""
    if offline():
        raise MakemoreError(f"{what} ({url}) is not cached and downloads are off (offline mode); {hint}")
    try:
        response = urllib.request.urlopen(url, timeout=60)
    except (OSError, ValueError) as e:
        raise MakemoreError(f"could not download {what} from {url} ({e}); {hint}") from None
    with response:
        try:
            yield response
        except OSError as e:  # the connection lost halfway, or the disk full
            raise MakemoreError(f"the download of {what} from {url} broke off ({e}); {hint}") from None


def resolve_url(url):
    """A text file at a URL (--data https://...), downloaded once into the cache, keyed by the URL, and
    read from there by every later run, eval or sample."""
    name = Path(urllib.parse.urlparse(url).path).name or "download.txt"
    target = cache_dir() / "downloads" / hashlib.sha256(url.encode()).hexdigest()[:16] / name
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".partial")
    hint = "check the URL, or download the file and pass --data PATH"
    try:
        with opened_url(url, "the data", hint) as response, open(tmp, "wb") as f:
            shutil.copyfileobj(response, f, CHUNK_BYTES)  # in pieces: the file may be larger than memory
    except MakemoreError:
        tmp.unlink(missing_ok=True)
        raise
    tmp.rename(target)
    return target


def codec_of(encoding):
    """The canonical name of an --encoding ('UTF8' is 'utf-8'), or the error that names a wrong one."""
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise MakemoreError(f"unknown encoding '{encoding}'; pass a Python codec name such as utf-8 or latin-1") from None


def decoded_chunks(path, encoding, chunk_bytes=CHUNK_BYTES):
    """A text file's text in pieces of about chunk_bytes, with Unix line ends and without a byte-order
    mark (Windows editors write one), so that a file larger than memory can be read through. A file read
    as UTF-8 that starts with the byte-order mark of UTF-16 or UTF-32 (Windows Notepad's "Unicode") is
    read in that encoding: the mark says so, and UTF-8 text cannot start with it."""
    codec = codec_of(encoding)
    with open(path, "rb") as f:
        if codec in ("utf-8", "utf-8-sig"):
            head = f.peek(4)[:4]  # read, not consumed
            boms = [(codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),  # before UTF-16's, their prefix
                    (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")]
            encoding = codec = next((name for bom, name in boms if head.startswith(bom)), codec)
        decoder, offset, carry, start = codecs.getincrementaldecoder(encoding)(), 0, "", True
        while True:
            raw = f.read(chunk_bytes)
            if b"\0" in raw and not codec.startswith(("utf-16", "utf-32")):  # their text is full of NUL bytes
                raise MakemoreError(f"data file {path} looks binary (it contains NUL bytes); pass a text file")
            held = len(decoder.getstate()[0])  # bytes of a character cut by the last chunk's end
            try:
                text = carry + decoder.decode(raw, final=not raw)
            except UnicodeDecodeError as e:
                raise MakemoreError(
                    f"data file {path} is not valid {encoding} (byte 0x{e.object[e.start]:02x} at offset "
                    f"{offset - held + e.start}); pass --encoding with the file's encoding, e.g. --encoding latin-1"
                ) from None
            offset += len(raw)
            if start and text:
                text, start = text.removeprefix("\ufeff"), False
            carry = "\r" if raw and text.endswith("\r") else ""  # its \n may begin the next chunk
            text = text[:len(text) - len(carry)].replace("\r\n", "\n").replace("\r", "\n")
            if text:
                yield text
            if not raw:
                return


def read_text_file(path, encoding):
    """A text file's text, as decoded_chunks reads it."""
    return "".join(decoded_chunks(path, encoding))


def open_hf(spec):
    """The splits of a Hugging Face dataset: a hub name, a folder of data files, one such file (CSV,
    JSON lines or Parquet), or a folder written by save_to_disk."""
    import datasets  # imported here: it is slow to import and most runs read local files

    if is_url(spec):  # a table file at a URL: downloaded once, then read from the cache
        name, config = str(resolve_url(spec)), ""
    else:
        name, _, config = spec.partition(":")
    saved = Path(name) / "state.json", Path(name) / "dataset_dict.json"  # a folder of Dataset.save_to_disk
    quiet = Path(name).exists() and not datasets.are_progress_bars_disabled()
    if quiet:  # reading a local file takes a moment: its "Generating train split" bar is noise; a download keeps its bar
        datasets.disable_progress_bars()
    try:
        if any(p.exists() for p in saved):
            dataset = datasets.load_from_disk(name)
            return [dataset] if isinstance(dataset, datasets.Dataset) else list(dataset.values())
        if table_reader(name):  # one local data file
            return list(datasets.load_dataset(table_reader(name), data_files=name).values())
        return list(datasets.load_dataset(name, config or None).values())
    except Exception as e:  # noqa: BLE001 - datasets raises many types; the message is what the user needs
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise MakemoreError(
            f"could not load Hugging Face dataset '{spec}' ({reason}); check the name, "
            "or download it and pass --data PATH"
        ) from None
    finally:
        if quiet:
            datasets.enable_progress_bars()


def hf_splits(spec, columns):
    """The splits of a Hugging Face dataset, each checked to have the columns; columns maps a column to
    the option that names it."""
    splits = open_hf(spec)
    for split in splits:
        for column, option in columns.items():
            if column not in split.column_names:
                raise MakemoreError(
                    f"Hugging Face dataset '{spec}' has no column '{column}' "
                    f"(it has: {', '.join(split.column_names)}); pass {option} NAME"
                )
    return splits


def hf_rows(splits, columns, batch_size=4096):
    """A dataset's rows (tuples of the columns' values) in batches, all splits in order, read from its
    Arrow files as they are needed (datasets 5's Column, read value by value, is 75x slower). A row
    missing a value is left out; a class-label column gives its label names."""
    for split in splits:
        names = {c: split.features[c].int2str for c in columns if hasattr(split.features[c], "int2str")}
        for batch in split.select_columns(list(columns)).iter(batch_size=batch_size):
            values = [[v if v is None or c not in names else names[c](v) for v in batch[c]] for c in columns]
            yield [row for row in zip(*values) if None not in row]


def load_hf(spec, columns):
    """Rows of a Hugging Face dataset's columns, all splits together (columns: as hf_splits takes them)."""
    return [row for batch in hf_rows(hf_splits(spec, columns), list(columns)) for row in batch]


def hf_texts(splits, column, batch_size=4096):
    """A dataset's texts in batches, as hf_rows reads them."""
    for batch in hf_rows(splits, [column], batch_size):
        yield [str(text) for text, in batch]


def hf_text_bytes(splits, column):
    """About how many bytes the texts of a dataset's column take (their Arrow buffers)."""
    return sum(split.data.column(column).nbytes for split in splits)


def local_files(source):
    """The path of a local source (or a named corpus) and the text files it stands for."""
    path = resolve_named(source) if source in CORPORA else resolve_url(source) if is_url(source) else Path(source)
    if not path.exists():
        names = ", ".join(CORPORA)
        raise MakemoreError(f"data file {source} does not exist; pass --data PATH to a text file, or a corpus name: {names}")
    files = sorted(path.glob("*.txt")) if path.is_dir() else [path]
    if not files:
        raise MakemoreError(f"data folder {path} holds no .txt files; pass a text file or a folder of .txt files")
    return path, files


def load_documents(source, encoding="utf-8", text_column="text", head=None):
    """The texts of a source: one per file, or one per row of a Hugging Face dataset.
    head: read at most about this many bytes of each file, or of the dataset's first rows (enough to
    guess the kind of a large source)."""
    if source.startswith("hf:"):
        splits, docs, size = hf_splits(source[3:], {text_column: "--text-column"}), [], 0
        for batch in hf_texts(splits, text_column, batch_size=256 if head else 4096):
            docs += batch
            size += sum(map(len, batch))
            if head and size >= head:
                break
        return docs
    path, files = local_files(source)
    if head:
        docs = [next(decoded_chunks(f, encoding, head), "") for f in files]
    else:
        docs = [read_text_file(f, encoding) for f in files]
    if not any(d.strip() for d in docs):
        raise MakemoreError(f"data {path} is empty; pass a file with text in it")
    return docs


def is_large(source):
    """Whether a local source is MAP_BYTES or more: read as prose, it is encoded once into the cache and
    memory-mapped from there (load_text measures a dataset's text column itself)."""
    _, files = local_files(source)
    return sum(f.stat().st_size for f in files) >= MAP_BYTES


def load_text(source, encoding, text_column, docs=None, log=print):
    """The text of a source read as prose, its files (or rows) joined by newlines, as a Text. docs: its
    texts, when they are read already. A large source is encoded once into the cache, keyed by its
    content and its reading (the encoding of local files, the column of a dataset), and mapped from there."""
    if docs:
        return Text.of("\n".join(docs))
    if source.startswith("hf:"):
        splits = hf_splits(source[3:], {text_column: "--text-column"})

        def pieces():
            first = True
            for batch in hf_texts(splits, text_column):
                if batch:
                    yield ("" if first else "\n") + "\n".join(batch)
                    first = False
        fingerprints = [getattr(split, "_fingerprint", None) for split in splits]
        if hf_text_bytes(splits, text_column) < MAP_BYTES or None in fingerprints:
            return Text(*encode(pieces, np.empty))  # small, or nothing to key a cache entry by: in memory
        name, reading, content = source, f"column {text_column}", " ".join(fingerprints)
    else:
        if not is_large(source):
            return Text.of("\n".join(load_documents(source, encoding, text_column)))
        path, files = local_files(source)
        name, reading, content = str(path.resolve()), codec_of(encoding), digest(path)

        def pieces():
            for k, f in enumerate(files):
                if k:
                    yield "\n"
                yield from decoded_chunks(f, encoding)
    key = f"{content} {reading} {TEXT_FORMAT}"
    folder = cache_dir() / "text" / hashlib.sha256(key.encode()).hexdigest()[:32]
    meta = cached(folder)
    if meta is None:
        shutil.rmtree(folder, ignore_errors=True)  # a damaged entry is encoded again
        encode_to_cache(pieces, {"source": name, "reading": reading}, folder, log)
        meta = cached(folder)
    ids = np.memmap(folder / "ids.bin", dtype=meta["dtype"], mode="c", shape=(meta["length"],))
    return Text(meta["chars"], ids)


def cached(folder):
    """What text.json says of a whole cache entry, or None."""
    try:
        meta = json.loads((folder / "text.json").read_text())
        whole = (folder / "ids.bin").stat().st_size == meta["length"] * np.dtype(meta["dtype"]).itemsize
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return meta if whole else None


def drop_superseded(folder, meta, log):
    """Remove the cache entries of earlier contents of the same source read the same way, so that editing
    a large file does not leave a copy per edit. A job still reading one keeps its mapping: the file
    goes when it is closed."""
    for other in folder.parent.iterdir():
        old = cached(other) if other != folder else None
        if old and (old.get("source"), old.get("reading")) == (meta["source"], meta["reading"]):
            shutil.rmtree(other, ignore_errors=True)
            log(f"data: removed {other}, the encoded text of an earlier version of {meta['source']}")


def encode_to_cache(pieces, meta, folder, log):
    """Encode a text, given as pieces() (see makemore.text.encode), into folder: ids.bin (the ids) and
    text.json (meta, with the characters, the ids' type and the length)."""
    source = meta["source"]
    log(f"data: {source} is large; encoding it once into {folder}, to be memory-mapped from there")
    tmp = folder.with_name(folder.name + f".partial-{os.getpid()}")
    try:
        tmp.mkdir(parents=True, exist_ok=True)
        chars, ids = encode(pieces, lambda length, dtype: np.memmap(tmp / "ids.bin", dtype, "w+", shape=(length,)))
        ids.flush()
        meta = {**meta, "chars": chars, "dtype": ids.dtype.name, "length": len(ids)}
        del ids
        if not chars.strip():
            raise MakemoreError(f"data {source} is empty; pass a file with text in it")
        (tmp / "text.json").write_text(json.dumps(meta))
        tmp.rename(folder)
        drop_superseded(folder, meta, log)
    except OSError as e:
        if not (folder / "text.json").exists():  # else another process encoded it first
            raise MakemoreError(f"could not write the encoded text of {source} to {folder} ({e.strerror or e}); "
                                "free some space, or set MAKEMORE_CACHE to a folder with room") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def item_lines(text):
    """The items of a text read as lines: each line stripped, empty lines left out."""
    return [line.strip() for line in text.split("\n") if line.strip()]


def load_labeled_pairs(cfg):
    """(item, label) pairs of a labeled source, in the source's order."""
    if cfg.data.startswith("hf:"):
        rows = load_hf(cfg.data[3:], {cfg.text_column: "--text-column", cfg.label_column: "--label-column"})
        pairs = [(str(text).strip(), str(label).strip()) for text, label in rows]
        return [(text, label) for text, label in pairs if text and label]
    path, files = local_files(cfg.data)
    pairs = []
    if path.is_dir():  # one file per label
        for f in files:
            items = item_lines(read_text_file(f, cfg.encoding))
            if not items:
                raise MakemoreError(f"class '{f.stem}' ({f}) has no items; add items to it or remove the file")
            pairs += [(item, f.stem) for item in items]
        return pairs
    for number, line in enumerate(read_text_file(path, cfg.encoding).split("\n"), 1):
        if not line.strip():
            continue
        label, tab, item = line.partition("\t")
        if not (tab and label.strip() and item.strip()):
            raise MakemoreError(
                f"line {number} of {path} is not label<TAB>item ({line[:40]!r}); labeled files hold a label, "
                "a tab and an item on each line: fix or remove that line"
            )
        pairs.append((item.strip(), label.strip()))
    if not pairs:
        raise MakemoreError(f"data {path} is empty; pass a file with label<TAB>item lines")
    return pairs


# ----------------------------------------------------------------------------------------------
# corpora and splits


@dataclass
class Corpus:
    kind: str  # "lines" or "stream"
    train: list | Text  # items (lines) or text (stream: slices of one Text)
    val: list | Text
    test: list | Text
    read_as: str = ""  # the --kind the data was read as, when it differs ("labeled" for an LM on a labeled corpus)

    def splits(self):
        return {"train": self.train, "val": self.val, "test": self.test}

    def chars(self):
        """Every character the tokenizer must know, sorted."""
        if self.kind == "lines":
            return chars_of(self.train + self.val + self.test)
        return self.train.chars

    def train_char_counts(self):
        """{character: occurrences in the train split}."""
        if self.kind == "lines":
            return Counter(ch for item in self.train for ch in item)
        return {ch: int(n) for ch, n in zip(self.train.chars, self.train.counts()[1:]) if n}

    def digest(self):
        """sha256 of the splits' contents: a run records it, so that reading its data again can tell
        whether the splits are still the ones it was trained, validated and tested on."""
        if self.kind == "lines":
            return splits_digest("\n".join(part).encode() for part in self.splits().values())
        sizes = " ".join(str(len(part)) for part in self.splits().values())
        return splits_digest((chunk for part in self.splits().values() for chunk in part.byte_chunks()),
                             f"{self.train.chars}\0{sizes}".encode())


def splits_digest(pieces, head=b""):
    """sha256 hex of head and pieces, each piece's length written before it, so that no two ways of
    cutting the same bytes into splits have the same digest."""
    h = hashlib.sha256(head)
    for piece in pieces:
        h.update(len(piece).to_bytes(8, "little"))
        h.update(piece)
    return h.hexdigest()


@dataclass
class LabeledCorpus:
    labels: list  # label names; a pair holds an index into this list
    train: list  # (item, label id) pairs the classifier trains on (--label-frac of the train split)
    val: list
    test: list
    unused: list = field(default_factory=list)  # pairs of the train split left out by --label-frac
    kind: str = "labeled"
    read_as: str = ""

    def splits(self):
        return {"train": self.train, "val": self.val, "test": self.test}

    def chars(self):
        return chars_of(item for part in (self.train, self.unused, self.val, self.test) for item, _ in part)

    def train_char_counts(self):
        return Counter(ch for item, _ in self.train for ch in item)

    def digest(self):
        """sha256 of the labels and of each split's (item, label) pairs, --label-frac's unused ones too."""
        parts = (self.train, self.unused, self.val, self.test)
        return splits_digest(["\n".join(self.labels).encode()] +
                             ["\n".join(f"{item}\t{label}" for item, label in part).encode() for part in parts])

    def as_lines(self):
        """The items alone, in the same split (the whole train split): text for a language model."""
        def items(pairs):
            return list(dict.fromkeys(item for item, _ in pairs))
        return Corpus("lines", items(self.train + self.unused), items(self.val), items(self.test), read_as="labeled")


def guess_kind(docs, folder=False):
    """The kind of a source's texts (one per file or row): label<TAB>item on every line is labeled;
    prose has paragraphs (at least 1% of its lines blank: tiny Shakespeare's are 18%, so a stray blank
    line or two in a list of names leaves it a list) or a line over 100 characters (a list of items is
    held padded to its longest); lists of items have neither, and a folder of several such lists is
    labeled data, each file's name the label of its items (the surnames layout)."""
    text = "\n".join(doc.strip() for doc in docs)  # the newline that ends a file is no paragraph break
    lines = text.split("\n")
    if all("\t" in line for line in lines if line.strip()):
        return "labeled"
    if sum(not line.strip() for line in lines) >= 0.01 * len(lines) or max(map(len, lines)) > 100:
        return "stream"
    return "labeled" if folder and len(docs) > 1 else "lines"


def split_sizes(n, cfg):
    n_val = max(1, round(n * cfg.val_frac))
    n_test = max(1, round(n * cfg.test_frac)) if cfg.test_frac > 0 else 0
    return n - n_val - n_test, n_val, n_test


def split_labeled(pairs, cfg):
    """Split distinct (item, label) pairs per label (stratified) from cfg.split_seed.

    An item is the unit of the split: an item with two labels goes, with both, to the split drawn
    for its first label, so no item is in two splits. --label-frac then keeps that share of each
    label's train pairs (at least one), picked from cfg.label_seed.
    """
    labels = sorted({label for _, label in pairs})
    if len(labels) < 2:
        raise MakemoreError(f"data {cfg.data} has one class only ({labels[0]}); a classifier needs at least 2 labels")
    index = {label: i for i, label in enumerate(labels)}
    labels_of = {}  # item -> its label ids, first seen first
    for item, label in pairs:
        labels_of.setdefault(item, []).append(index[label])
    strata = [[] for _ in labels]
    for item, ids in labels_of.items():
        strata[ids[0]].append(item)
    rng = random.Random(cfg.split_seed)
    parts = {"train": [], "val": [], "test": []}
    for items in strata:
        rng.shuffle(items)
        n_val, n_test = round(len(items) * cfg.val_frac), round(len(items) * cfg.test_frac)
        chunks = {"val": items[:n_val], "test": items[n_val:n_val + n_test], "train": items[n_val + n_test:]}
        for name, chunk in chunks.items():
            parts[name] += [(item, i) for item in chunk for i in labels_of[item]]
    if not parts["train"] or not parts["val"]:
        empty = "train" if not parts["train"] else "val"
        raise MakemoreError(f"data {cfg.data} has too few items ({len(labels_of)}) to split: the {empty} split gets none "
                            f"(--val-frac {cfg.val_frac} and --test-frac {cfg.test_frac} of each label's items, rounded); "
                            "give more items, or other --val-frac / --test-frac")
    picked, unused = parts["train"], []
    if cfg.label_frac < 1:
        rng = random.Random(cfg.label_seed)
        picked = []
        for i in range(len(labels)):
            of_label = [p for p in parts["train"] if p[1] == i]
            rng.shuffle(of_label)
            keep = max(1, round(len(of_label) * cfg.label_frac)) if of_label else 0
            picked += of_label[:keep]
            unused += of_label[keep:]
    return LabeledCorpus(labels, picked, parts["val"], parts["test"], unused)


def kept_once(entries, what, log):
    """The entries de-duplicated, first seen first; says how many repeats were dropped."""
    distinct = list(dict.fromkeys(entries))
    if len(distinct) < len(entries):
        log(f"data: {len(entries):,} {what}, {len(distinct):,} distinct: each is kept once, so none is in two splits")
    return distinct


def load_corpus(cfg, log=print, labeled=False):
    """The corpus of a data config. labeled=True (classifiers) reads (item, label) pairs; a language
    model on a labeled source reads its items, in the labeled split."""
    kind, docs = cfg.kind, None
    if kind == "auto":
        if labeled:
            kind = "labeled"
        elif cfg.data in CORPORA:
            kind = CORPORA[cfg.data].kind
        else:
            hf = cfg.data.startswith("hf:")
            head = hf or is_large(cfg.data)  # the kind is guessed from the start of each file, or the first rows
            docs = load_documents(cfg.data, cfg.encoding, cfg.text_column, head=GUESS_BYTES if head else None)
            kind = guess_kind(docs, folder=not hf and Path(cfg.data).is_dir())
            docs = None if head else docs
        others = " or ".join(k for k in ("lines", "stream", "labeled") if k != kind)
        log(f"data: {cfg.data} read as {kind} (pass --kind {others} to change)")
    if kind == "labeled" and cfg.data in CORPORA and CORPORA[cfg.data].kind != "labeled":  # transfer's LM too
        labeled_names = ", ".join(name for name, spec in CORPORA.items() if spec.kind == "labeled")
        raise MakemoreError(f"corpus '{cfg.data}' has no labels; a classifier needs labeled data: pass --data {labeled_names}, "
                            "a file of label<TAB>item lines or a folder of <label>.txt files")
    if labeled and kind != "labeled":
        raise MakemoreError(f"a classifier needs labeled data (label<TAB>item lines or a folder of <label>.txt files), "
                            f"not --kind {kind}: drop --kind or pass --kind labeled")
    if kind == "labeled":
        corpus = split_labeled(kept_once(load_labeled_pairs(cfg), "(item, label) pairs", log), cfg)
        return corpus if labeled else corpus.as_lines()
    if kind == "lines":
        docs = docs or load_documents(cfg.data, cfg.encoding, cfg.text_column)
        items = kept_once([item for doc in docs for item in item_lines(doc)], "lines", log)
        longest = max(items, key=len, default="")
        if len(longest) > MAX_ITEM_LEN:
            raise MakemoreError(
                f"data {cfg.data} has a line of {len(longest):,} characters; line corpora are for short items "
                f"(at most {MAX_ITEM_LEN:,}): pass --kind stream to read it as prose"
            )
        n_train, n_val, _ = split_sizes(len(items), cfg)
        if n_train < 1:
            raise MakemoreError(f"data {cfg.data} has only {len(items)} distinct item(s); give at least 3 lines")
        random.Random(cfg.split_seed).shuffle(items)
        return Corpus("lines", items[:n_train], items[n_train:n_train + n_val], items[n_train + n_val:])
    text = load_text(cfg.data, cfg.encoding, cfg.text_column, docs, log)
    n_train, n_val, _ = split_sizes(len(text), cfg)
    corpus = Corpus("stream", text[:n_train], text[n_train:n_train + n_val], text[n_train + n_val:])
    for name, part in corpus.splits().items():
        needed = cfg.seq_len + 1 if name == "train" else 2
        if part and len(part) < needed:
            raise MakemoreError(
                f"the {name} split of {cfg.data} is {len(part)} characters, shorter than one sequence "
                f"({needed}); give more text or pass a smaller --seq-len"
            )
    return corpus


def load_whole(cfg, labels=None):
    """All of a source as the test part of a corpus, read as a run reads its data (cfg.kind), so that
    a trained model can score a file of the user's. Lines are scored as they are, repeats included.
    labels: a classifier's label names; the source's labels must be among them."""
    if cfg.kind == "labeled":
        pairs = load_labeled_pairs(cfg)
        if labels is None:  # a language model trained on the items of labeled data
            return Corpus("lines", [], [], [item for item, _ in pairs])
        unknown = sorted({label for _, label in pairs} - set(labels))
        if unknown:
            raise MakemoreError(f"data {cfg.data} has label(s) this classifier does not know: {', '.join(unknown[:5])}"
                                f"{' and more' if len(unknown) > 5 else ''}; it knows {', '.join(labels)}")
        return LabeledCorpus(labels, [], [], [(item, labels.index(label)) for item, label in pairs])
    if cfg.kind == "lines":
        docs = load_documents(cfg.data, cfg.encoding, cfg.text_column)
        return Corpus("lines", [], [], [item for doc in docs for item in item_lines(doc)])
    text = load_text(cfg.data, cfg.encoding, cfg.text_column, log=lambda _: None)
    if len(text) < 2:
        raise MakemoreError(f"data {cfg.data} is one character: nothing to predict; give more text")
    return Corpus("stream", text[:0], text[:0], text)


# ----------------------------------------------------------------------------------------------
# batches


def char_frequencies(x):
    """How often each token id occurs in x as a character (BOUNDARY, the start and padding, counts 0)."""
    counts = torch.bincount(x.flatten()).double()
    counts[BOUNDARY] = 0
    return counts


def noised(x, p, frequencies):
    """Input noising ("unigram noising", Xie et al. 2017): each character of x, not BOUNDARY, is
    replaced with probability p by one drawn from `frequencies`. The targets stay as they were, so
    the model learns to predict from a context it cannot fully trust: a regulariser like dropout."""
    hit = (torch.rand(x.shape, device=x.device) < p) & (x != BOUNDARY)
    drawn = torch.multinomial(frequencies, x.numel(), replacement=True).view_as(x)  # no host sync
    return torch.where(hit, drawn, x)


def item_rows(ids, what, max_input=None):
    """Rows BOUNDARY + item, padded with BOUNDARY, and each row's length: (lengths, x). An item whose
    row is longer than a model reads (`max_input`, a transformer's block) is an error."""
    lengths = torch.tensor([len(i) + 1 for i in ids])  # positions per row, the start token included (on the CPU)
    width = int(lengths.max()) if ids else 1
    if max_input is not None and width > max_input:
        raise MakemoreError(f"{what} has an item of {width - 1} characters, more than the {max_input - 1} that "
                            f"--block-size {max_input} reads; train with --block-size {width} or more, or leave that item out")
    x = torch.full((len(ids), width), BOUNDARY, dtype=torch.long)
    for row, seq in enumerate(ids):
        x[row, 1:len(seq) + 1] = torch.tensor(seq, dtype=torch.long)
    return lengths, x


class LineBatches:
    """Items as rows: x = BOUNDARY + item, y = item + BOUNDARY, padded (x with BOUNDARY, y with IGNORE).

    Position t of a row predicts y[t] from x[<=t]; a model with a finite context sees BOUNDARY
    ids before the item's start, so the first prediction of every item reads BOUNDARY*block_size.
    """

    def __init__(self, items, tokenizer, device, what="data", max_input=None):
        ids = [tokenizer.encode(item, what) for item in items]
        self.lengths, x = item_rows(ids, what, max_input)  # a row's length is also its predicted characters
        y = torch.full(x.shape, IGNORE, dtype=torch.long)
        for row, seq in enumerate(ids):
            y[row, :len(seq)] = torch.tensor(seq, dtype=torch.long)
            y[row, len(seq)] = BOUNDARY
        self.x, self.y = x.to(device), y.to(device)
        self.n_targets = int(self.lengths.sum())

    def __len__(self):
        return len(self.lengths)

    def char_frequencies(self):
        return char_frequencies(self.x)

    def _rows(self, rows):
        width = int(self.lengths[rows].max())  # trim the padding that no row of this batch needs
        rows = rows.to(self.x.device, non_blocking=True)
        return self.x[rows, :width], self.y[rows, :width]

    def sample(self, batch_size, generator):
        return self._rows(torch.randint(len(self), (batch_size,), generator=generator))

    def iter_all(self, batch_size):
        for start in range(0, len(self), batch_size):
            yield self._rows(torch.arange(start, min(start + batch_size, len(self))))


class StreamBatches:
    """One long text; a sequence predicts seq_len characters after `warmup` context-only ones.

    `warmup` gives a model with a finite context its full context at the first scored position;
    before the start of the text it reads BOUNDARY ids. The text stays as its compact ids (a Text,
    or a string made into one): on the training device, or on the CPU where it is memory-mapped,
    and a batch reads its windows from there. reverse: read the text right to left.
    """

    def __init__(self, text, tokenizer, device, seq_len, warmup=0, what="data", reverse=False):
        text = text if isinstance(text, Text) else Text.of(text)
        table = [BOUNDARY] + [tokenizer.stoi.get(ch, tokenizer.unk_id) for ch in text.chars]
        unknown = [k for k, i in enumerate(table) if i is None]
        if unknown:
            counts = text.counts()
            seen = [k for k in unknown if counts[k]]
            if seen:
                tokenizer.encode(text.chars[seen[0] - 1], what)  # raises, naming the character
            table = [i or BOUNDARY for i in table]  # characters of other parts of the data
        self.seq_len, self.warmup, self.n, self.reverse = seq_len, warmup, len(text), reverse
        self.n_targets = self.n - 1
        self.device = torch.device(device)
        self.ids = torch.from_numpy(text.ids)
        if not isinstance(text.ids, np.memmap):
            self.ids = self.ids.to(self.device)
        identity = table == list(range(len(table)))
        self.table = None if identity else torch.tensor(table, device=self.ids.device)
        self.offsets = torch.arange(warmup + seq_len, device=self.ids.device)
        self.text, self.starts = text, None  # starts: the windows iter_all reads, when not all of them (spread)

    def __len__(self):
        return max(1, -(-(self.n - 1) // self.seq_len))  # sequences that cover the text once

    def char_frequencies(self):
        counts = torch.from_numpy(self.text.counts()).double()
        ids = torch.arange(len(counts)) if self.table is None else self.table.cpu()
        out = torch.zeros(int(ids.max()) + 1, dtype=torch.double).index_add_(0, ids, counts)
        out[BOUNDARY] = 0
        return out[:int(out.nonzero().max()) + 1].to(self.device)  # up to the largest id that occurs, as bincount counts

    def read(self, pos, fill=None):
        """The ids at text positions pos (in reading order); with fill, `fill` outside the text."""
        if fill is not None:
            inside = (pos >= 0) & (pos < self.n)
            pos = pos.clamp(0, self.n - 1)
        ids = self.ids[self.n - 1 - pos if self.reverse else pos].long()
        if self.table is not None:
            ids = self.table[ids]
        return ids if fill is None else torch.where(inside, ids, fill)

    def windows(self, starts):
        # a window read from `starts` scores seq_len characters after warmup characters of context
        first = starts - self.warmup  # on the CPU: whether a window crosses an end of the text costs no sync
        crosses = int(first.min()) < 0 or int(first.max()) + len(self.offsets) >= self.n
        pos = first.to(self.ids.device, non_blocking=True)[:, None] + self.offsets
        x, y = self.read(pos, BOUNDARY if crosses else None), self.read(pos + 1, IGNORE if crosses else None)
        if self.warmup:
            y[:, :self.warmup] = IGNORE  # context-only positions are read, never scored
        return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    def sample(self, batch_size, generator):
        high = max(1, self.n - self.seq_len)
        return self.windows(torch.randint(high, (batch_size,), generator=generator))

    def iter_all(self, batch_size):
        starts = torch.arange(0, self.n - 1, self.seq_len) if self.starts is None else self.starts
        for chunk in starts.split(batch_size):
            yield self.windows(chunk)

    def spread(self, max_targets):
        """These batches, reading at most max_targets characters: whole windows spaced evenly over the text."""
        if self.n_targets <= max_targets or self.n - 1 <= self.seq_len:
            return self
        part = copy.copy(self)
        k = max(1, max_targets // self.seq_len)
        part.starts, part.n_targets = torch.linspace(0, self.n - 1 - self.seq_len, k).long(), k * self.seq_len
        return part


class LabeledBatches(LineBatches):
    """(item, label) pairs as rows: x = BOUNDARY + item, padded with BOUNDARY; y = the label id.

    A classifier reads positions 1..len(item) of a row (BOUNDARY never occurs inside an item).
    balance() makes sample() draw every label equally often.
    """

    def __init__(self, pairs, tokenizer, device, what="data", max_input=None):
        ids = [tokenizer.encode(item, what) for item, _ in pairs]
        self.lengths, x = item_rows(ids, what, max_input)
        self.labels = torch.tensor([label for _, label in pairs], dtype=torch.long)
        self.x, self.y = x.to(device), self.labels.to(device)
        self.n_targets = len(ids)
        self.weights = None

    def balance(self):
        self.weights = 1.0 / torch.bincount(self.labels)[self.labels].double()

    def _rows(self, rows):
        width = int(self.lengths[rows].max())  # trim the padding that no row of this batch needs
        rows = rows.to(self.x.device, non_blocking=True)
        return self.x[rows, :width], self.y[rows]

    def sample(self, batch_size, generator):
        if self.weights is None:
            return super().sample(batch_size, generator)
        return self._rows(torch.multinomial(self.weights, batch_size, replacement=True, generator=generator))


def make_batches(corpus, tokenizer, device, seq_len=128, context_size=None, max_input=None, source=None, reverse=False):
    """Batches for every non-empty split, keyed by split name. Errors name the split, or source if given.
    reverse: the model reads each item (or the text) right to left; the corpus keeps reading order.

    On stream corpora a model with a sliding context of `context_size` tokens reads a full context
    before its first scored character. Other models train from each sequence's start and are
    evaluated after a burn-in of up to seq_len characters (no more than fits in `max_input`), so the
    whole-split loss is not inflated by predictions made from almost no context. A sequence is cut
    to `max_input` characters (a transformer's block); an item longer than that is an error.
    """
    if max_input is not None:
        seq_len = min(seq_len, max_input)
    out = {}
    for name, part in corpus.splits().items():
        if not part:
            continue
        what = source or f"the {name} split"
        if reverse and corpus.kind == "lines":  # language models only: a classifier reads both ways with a second body instead
            part = [item[::-1] for item in part]
        if corpus.kind == "labeled":
            out[name] = LabeledBatches(part, tokenizer, device, what, max_input)
        elif corpus.kind == "lines":
            out[name] = LineBatches(part, tokenizer, device, what, max_input)
        else:
            burn_in = seq_len if max_input is None else max_input - seq_len
            warmup = context_size - 1 if context_size else (0 if name == "train" else burn_in)
            out[name] = StreamBatches(part, tokenizer, device, seq_len, warmup, what, reverse)
    return out
