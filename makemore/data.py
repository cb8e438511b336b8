"""Corpora: where text comes from, how it is split, and how batches are drawn from it.

A source is a local file or folder, `hf:<dataset>[:<config>]` (Hugging Face `datasets`), or a
short name from CORPORA. A *lines* corpus holds one item per line (names, words): items are
de-duplicated and shuffled into train / val / test from a seed, so no item is in two splits.
A *stream* corpus is one long text (prose), cut into contiguous train / val / test parts.

Batches come from tensors that live on the training device; only the few random indices of a
batch are made on the CPU, so drawing a batch costs no host-to-device copy of data.
"""
import hashlib
import io
import os
import random
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from makemore.config import check_choice, check_fraction, check_positive
from makemore.errors import MakemoreError
from makemore.tokenizer import BOUNDARY

IGNORE = -1  # target id that the loss skips: padding after an item, context-only positions
MAX_ITEM_LEN = 2000  # longer lines belong to prose: a line corpus pads every item to its longest

# ----------------------------------------------------------------------------------------------
# configuration


@dataclass
class DataConfig:
    data: str = field(default="names", metadata={"help": "a text file or folder, hf:<dataset>[:<config>], or a corpus name: names, shakespeare, surnames"})
    kind: str = field(default="auto", metadata={"help": "lines (one item per line), stream (prose), or auto (guess and say so)", "choices": ["auto", "lines", "stream"]})
    encoding: str = field(default="utf-8", metadata={"help": "text encoding of local files, e.g. latin-1"})
    text_column: str = field(default="text", metadata={"help": "column that holds the text in a Hugging Face dataset"})
    val_frac: float = field(default=0.1, metadata={"help": "share of the corpus held out for validation"})
    test_frac: float = field(default=0.1, metadata={"help": "share of the corpus held out for the final test"})
    split_seed: int = field(default=42, metadata={"help": "seed of the train/val/test split (kept apart from the training seed)"})
    seq_len: int = field(default=128, metadata={"help": "stream corpora: characters predicted per training sequence"})

    def __post_init__(self):
        check_choice(self, "kind")
        check_positive(self, "seq_len")
        check_fraction(self, "val_frac", "test_frac")


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
    "shakespeare": NamedCorpus(
        "tinyshakespeare.txt", "stream", "tiny Shakespeare, 1.1 MB of plays (char-rnn)",
        url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
    ),
    "surnames": NamedCorpus(
        "surnames", "lines", "20,074 surnames in 18 languages (PyTorch tutorial data)",
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
    """sha256 of a file, or of a folder's .txt files as (name, bytes) pairs in name order."""
    h = hashlib.sha256()
    if path.is_dir():
        for p in sorted(path.glob("*.txt")):
            h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    else:
        h.update(path.read_bytes())
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
    if offline():
        raise MakemoreError(f"corpus '{name}' is not cached and downloads are off (offline mode); {hint}")
    target = cache_dir() / spec.file
    try:
        with urllib.request.urlopen(spec.url, timeout=60) as response:
            payload = response.read()
    except OSError as e:
        raise MakemoreError(f"could not download corpus '{name}' from {spec.url} ({e}); {hint}") from None
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


def read_text_file(path, encoding):
    raw = path.read_bytes()
    if b"\0" in raw:
        raise MakemoreError(f"data file {path} looks binary (it contains NUL bytes); pass a text file")
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as e:
        raise MakemoreError(
            f"data file {path} is not valid {encoding} (byte 0x{raw[e.start]:02x} at offset {e.start}); "
            "pass --encoding with the file's encoding, e.g. --encoding latin-1"
        ) from None
    except LookupError:
        raise MakemoreError(f"unknown encoding '{encoding}'; pass a Python codec name such as utf-8 or latin-1") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def load_hf(spec, text_column):
    import datasets  # imported here: it is slow to import and most runs read local files

    name, _, config = spec.partition(":")
    try:
        dataset = datasets.load_dataset(name, config or None)
    except Exception as e:  # datasets raises many types; the message is what the user needs
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise MakemoreError(
            f"could not load Hugging Face dataset '{spec}' ({reason}); check the name, "
            "or download it and pass --data PATH"
        ) from None
    docs = []
    for split in dataset.values():
        if text_column not in split.column_names:
            raise MakemoreError(
                f"Hugging Face dataset '{spec}' has no column '{text_column}' "
                f"(it has: {', '.join(split.column_names)}); pass --text-column NAME"
            )
        docs.extend(str(t) for t in split[text_column] if t is not None)
    return docs


def load_documents(source, encoding="utf-8", text_column="text"):
    """The texts of a source: one per file, or one per row of a Hugging Face dataset."""
    if source.startswith("hf:"):
        return load_hf(source[3:], text_column)
    path = resolve_named(source) if source in CORPORA else Path(source)
    if not path.exists():
        names = ", ".join(CORPORA)
        raise MakemoreError(f"data file {source} does not exist; pass --data PATH to a text file, or a corpus name: {names}")
    files = sorted(path.glob("*.txt")) if path.is_dir() else [path]
    if not files:
        raise MakemoreError(f"data folder {path} holds no .txt files; pass a text file or a folder of .txt files")
    docs = [read_text_file(f, encoding) for f in files]
    if not any(d.strip() for d in docs):
        raise MakemoreError(f"data {path} is empty; pass a file with text in it")
    return docs


# ----------------------------------------------------------------------------------------------
# corpora and splits


@dataclass
class Corpus:
    kind: str  # "lines" or "stream"
    train: list | str  # items (lines) or text (stream)
    val: list | str
    test: list | str

    def splits(self):
        return {"train": self.train, "val": self.val, "test": self.test}

    def texts(self):
        """Everything the tokenizer must know, as a list of strings."""
        if self.kind == "lines":
            return self.train + self.val + self.test
        return [self.train, self.val, self.test]


def guess_kind(text):
    """Prose has paragraphs or long lines; lists of items have neither."""
    lines = text.strip().split("\n")
    if "\n\n" in text.strip() or max(len(line) for line in lines) > 100:
        return "stream"
    return "lines"


def split_sizes(n, cfg):
    n_val = max(1, round(n * cfg.val_frac)) if cfg.val_frac > 0 else 0
    n_test = max(1, round(n * cfg.test_frac)) if cfg.test_frac > 0 else 0
    return n - n_val - n_test, n_val, n_test


def load_corpus(cfg, log=print):
    docs = load_documents(cfg.data, cfg.encoding, cfg.text_column)
    kind = cfg.kind
    if kind == "auto":
        kind = CORPORA[cfg.data].kind if cfg.data in CORPORA else guess_kind("\n".join(docs))
        other = "stream" if kind == "lines" else "lines"
        log(f"data: {cfg.data} read as {kind} (pass --kind {other} to change)")
    if kind == "lines":
        items = [line.strip() for doc in docs for line in doc.split("\n")]
        items = list(dict.fromkeys(i for i in items if i))  # de-duplicate, keeping first-seen order
        longest = max(items, key=len, default="")
        if len(longest) > MAX_ITEM_LEN:
            raise MakemoreError(
                f"data {cfg.data} has a line of {len(longest):,} characters; line corpora are for short items "
                f"(at most {MAX_ITEM_LEN:,}): pass --kind stream to read it as prose"
            )
        n_train, n_val, _ = split_sizes(len(items), cfg)
        if n_train < 1 or (cfg.val_frac > 0 and n_val < 1):
            raise MakemoreError(f"data {cfg.data} has only {len(items)} distinct item(s); give at least 3 lines")
        random.Random(cfg.split_seed).shuffle(items)
        return Corpus("lines", items[:n_train], items[n_train:n_train + n_val], items[n_train + n_val:])
    text = "\n".join(docs)
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


# ----------------------------------------------------------------------------------------------
# batches


class LineBatches:
    """Items as rows: x = BOUNDARY + item, y = item + BOUNDARY, padded (x with 0, y with IGNORE).

    Position t of a row predicts y[t] from x[<=t]; a model with a finite context sees BOUNDARY
    ids before the item's start, so the first prediction of every item reads BOUNDARY*block_size.
    """

    def __init__(self, items, tokenizer, device, what="data"):
        ids = [tokenizer.encode(item, what) for item in items]
        self.lengths = torch.tensor([len(i) + 1 for i in ids])  # predicted characters per item, on the CPU
        width = int(self.lengths.max()) if ids else 1
        x = torch.full((len(ids), width), BOUNDARY, dtype=torch.long)
        y = torch.full((len(ids), width), IGNORE, dtype=torch.long)
        for row, seq in enumerate(ids):
            x[row, 1:len(seq) + 1] = torch.tensor(seq, dtype=torch.long)
            y[row, :len(seq)] = torch.tensor(seq, dtype=torch.long)
            y[row, len(seq)] = BOUNDARY
        self.x, self.y = x.to(device), y.to(device)
        self.n_targets = int(self.lengths.sum())

    def __len__(self):
        return len(self.lengths)

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
    before the start of the text it reads BOUNDARY ids.
    """

    def __init__(self, text, tokenizer, device, seq_len, warmup=0, what="data"):
        ids = torch.tensor(tokenizer.encode(text, what), dtype=torch.long)
        self.seq_len, self.warmup, self.n = seq_len, warmup, len(ids)
        self.n_targets = self.n - 1
        self.xpad = torch.cat([torch.full((warmup,), BOUNDARY), ids, torch.full((seq_len,), BOUNDARY)]).to(device)
        self.ypad = torch.cat([torch.full((warmup,), IGNORE), ids[1:], torch.full((seq_len + 1,), IGNORE)]).to(device)
        self.offsets = torch.arange(warmup + seq_len, device=device)

    def __len__(self):
        return max(1, -(-(self.n - 1) // self.seq_len))  # sequences that cover the text once

    def windows(self, starts):
        # starts are positions in the text; the padded tensors are shifted right by warmup
        pos = starts.to(self.offsets.device, non_blocking=True)[:, None] + self.offsets  # (B, warmup + seq_len)
        y = self.ypad[pos]
        y[:, :self.warmup] = IGNORE  # context-only positions are read, never scored
        return self.xpad[pos], y

    def sample(self, batch_size, generator):
        high = max(1, self.n - self.seq_len)
        return self.windows(torch.randint(high, (batch_size,), generator=generator))

    def iter_all(self, batch_size):
        starts = torch.arange(0, self.n - 1, self.seq_len)
        for chunk in starts.split(batch_size):
            yield self.windows(chunk)


def make_batches(corpus, tokenizer, device, seq_len=128, context_size=None, max_input=None):
    """Batches for every non-empty split, keyed by split name.

    On stream corpora a model with a sliding context of `context_size` tokens reads a full context
    before its first scored character. Other models train from each sequence's start and are
    evaluated after a burn-in of up to seq_len characters (no more than fits in `max_input`), so the
    whole-split loss is not inflated by predictions made from almost no context.
    """
    if corpus.kind == "stream" and max_input is not None and seq_len > max_input:
        raise MakemoreError(f"--seq-len {seq_len} is longer than the model reads (--block-size {max_input}); pass --seq-len {max_input}")
    out = {}
    for name, part in corpus.splits().items():
        if not part:
            continue
        what = f"the {name} split"
        if corpus.kind == "lines":
            out[name] = LineBatches(part, tokenizer, device, what)
        else:
            burn_in = seq_len if max_input is None else max_input - seq_len
            warmup = context_size - 1 if context_size else (0 if name == "train" else burn_in)
            out[name] = StreamBatches(part, tokenizer, device, seq_len, warmup, what)
    return out
