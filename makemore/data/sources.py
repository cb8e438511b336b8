"""Where text comes from: local files and folders, URLs, Hugging Face `datasets` (hf:), tables, and
the named corpora; text encodings; and the cache that holds downloads and the encoded form of
large prose, memory-mapped from there so that it may be larger than memory.
"""
import codecs
import contextlib
import dataclasses
import hashlib
import io
import json
import os
import shutil
import socket
import unicodedata
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from makemore.config import codec_name
from makemore.errors import MakemoreError
from makemore.processes import terminated_as_interrupt
from makemore.text import Text, encode

CHUNK_BYTES = 1 << 24  # files are read in pieces of this size
MAP_BYTES = 1 << 26  # prose this large is encoded once into the cache and memory-mapped from there
GUESS_BYTES = 1 << 20  # --kind auto reads this much of each file (or of the first rows) of such a source
TEXT_FORMAT = 1  # of the encoded texts in the cache
TABLE_FILES = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}  # suffix -> datasets' reader


@dataclass(frozen=True)
class NamedCorpus:
    file: str  # file or folder name, in MAKEMORE_DATA, the shipped data/ or the download cache
    kind: str
    about: str
    url: str | None = None  # None: shipped with the package
    sha256: str | None = None  # of the file, or of a folder's (name, bytes) pairs in name order


CORPORA = {
    "names": NamedCorpus("names.txt", "lines", "29,910 US baby names of 2017, shipped in data/"),
    "names-sex": NamedCorpus("names_sex.tsv", "labeled", "the same names labeled F or M (the sex with more births), "
                                                         "shipped in data/"),
    "glosses": NamedCorpus("glosses.tsv", "labeled", "9,000 WordNet definitions labeled by what they define (animal, "
                                                   "artifact, food, location, person, plant), shipped in data/"),
    "glosses-text": NamedCorpus("glosses_unlabeled.txt", "stream", "1.5 MB of other WordNet definitions and examples, "
                                                                  "unlabeled, for pretraining; shipped in data/"),
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
    package = Path(__file__).resolve().parent.parent
    for d in (package / "_data", package.parent / "data"):
        if (d / "names.txt").exists():
            return d
    return package.parent / "data"


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


def table_folder(path):
    """Whether path is a folder of table files and no text files (train.csv, test.csv, ...: datasets reads
    each file's name as its split)."""
    path = Path(path)
    return (path.is_dir() and not any(path.glob("*.txt"))
            and any(table_kind(p.name) for p in path.iterdir() if p.is_file()))


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
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MakemoreError(f"cannot make the download folder {target.parent} ({e.strerror or e}); set MAKEMORE_CACHE "
                            "to a folder you can write") from None
    tmp = target.with_name(target.name + ".partial")
    hint = "check the URL, or download the file and pass --data PATH"
    cap = max_download_bytes()
    try:
        with terminated_as_interrupt(), opened_url(url, "the data", hint) as response, new_file(tmp) as f:
            while chunk := response.read(CHUNK_BYTES):  # in pieces: the file may be larger than memory
                if f.tell() + len(chunk) > cap:
                    raise MakemoreError(f"the download of {url} is larger than {cap >> 20:,} MB, the limit; set "
                                        f"{MAX_DOWNLOAD_ENV} to more MB, or download the file and pass --data PATH")
                f.write(chunk)
        tmp.rename(target)
    except OSError as e:
        raise MakemoreError(f"cannot write the download {tmp} ({e.strerror or e}); set MAKEMORE_CACHE to a folder "
                            "with room that you can write") from None
    finally:
        tmp.unlink(missing_ok=True)  # a download cut short by an error, Ctrl-C or a kill leaves nothing behind
    return target


def new_file(path):
    """A file of the cache to write, never through a link at its name."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    return os.fdopen(os.open(path, flags, 0o644), "wb")


MAX_DOWNLOAD_ENV = "MAKEMORE_MAX_DOWNLOAD_MB"
MAX_DOWNLOAD_MB = 2048  # a --data URL larger than this is refused, unless MAKEMORE_MAX_DOWNLOAD_MB says more


def max_download_bytes():
    value = os.environ.get(MAX_DOWNLOAD_ENV, str(MAX_DOWNLOAD_MB))
    if not value.isdigit() or int(value) < 1:
        raise MakemoreError(f"{MAX_DOWNLOAD_ENV}={value!r} is not a positive whole number of MB; set it to one, e.g. "
                            f"{MAX_DOWNLOAD_MB}")
    return int(value) << 20


def decoded_chunks(path, encoding, chunk_bytes=CHUNK_BYTES):
    """A text file's text in pieces of about chunk_bytes, with Unix line ends, in Unicode's composed form
    (NFC: a letter and its accent as one character, however the file spells it) and without a byte-order
    mark (Windows editors write one), so that a file larger than memory can be read through. A file read
    as UTF-8 that starts with the byte-order mark of UTF-16 or UTF-32 (Windows Notepad's "Unicode") is
    read in that encoding: the mark says so, and UTF-8 text cannot start with it."""
    codec = codec_name(encoding)
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
            except UnicodeError as e:  # UTF-16 without a byte-order mark raises its own kind
                if isinstance(e, UnicodeDecodeError) and e.start < len(e.object):
                    where = f"byte 0x{e.object[e.start]:02x} at offset {offset - held + e.start}"
                else:
                    where = e.reason if isinstance(e, UnicodeDecodeError) else str(e)
                raise MakemoreError(f"data file {path} is not valid {encoding} ({where}); pass --encoding with the "
                                    "file's encoding, e.g. --encoding latin-1") from None
            offset += len(raw)
            if start and text:
                text, start = text.removeprefix("\ufeff"), False
            carry = "\r" if raw and text.endswith("\r") else ""  # its \n may begin the next chunk
            text = text[:len(text) - len(carry)].replace("\r\n", "\n").replace("\r", "\n")
            if not unicodedata.is_normalized("NFC", text):  # "é" typed as e + accent is the same item as "é"
                text = unicodedata.normalize("NFC", text)
            if text:
                yield text
            if not raw:
                return


def read_text_file(path, encoding):
    """A text file's text, as decoded_chunks reads it."""
    return "".join(decoded_chunks(path, encoding))


def hub_reachable(seconds=3):
    """Whether the Hugging Face hub (or the mirror HF_ENDPOINT names) answers a connection within seconds."""
    endpoint = urllib.parse.urlsplit(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((endpoint.hostname, port), timeout=seconds).close()
    except OSError:
        return False
    return True


def open_hf(spec):
    """The splits of a Hugging Face dataset, {name: Dataset}: a hub name, a folder of data files (train.csv,
    test.csv, ...), one such file (CSV, JSON lines or Parquet), or a folder written by save_to_disk."""
    hub_name = not is_url(spec) and not Path(spec.partition(":")[0]).exists()
    unreachable = hub_name and not offline() and not hub_reachable()
    if offline() or unreachable:  # the hub's libraries read the switch when first imported
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # so an unreachable hub reads the cache at once, rather than
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # retrying for half a minute
    import datasets  # imported here: it is slow to import and most runs read local files

    if is_url(spec):  # a table file at a URL: downloaded once, then read from the cache
        name, config = str(resolve_url(spec)), ""
    else:
        name, _, config = spec.partition(":")
    saved = Path(name) / "state.json", Path(name) / "dataset_dict.json"  # a folder of Dataset.save_to_disk
    quiet = Path(name).exists() and not datasets.are_progress_bars_disabled()
    if (
        quiet
    ):  # reading a local file takes a moment: its "Generating train split" bar is noise; a download keeps its bar
        datasets.disable_progress_bars()
    try:
        if any(p.exists() for p in saved):
            dataset = datasets.load_from_disk(name)
            return {"train": dataset} if isinstance(dataset, datasets.Dataset) else dict(dataset)
        if table_reader(name):  # one local data file
            return dict(datasets.load_dataset(table_reader(name), data_files=name))
        return dict(datasets.load_dataset(name, config or None))
    except Exception as e:  # noqa: BLE001 - datasets raises many types; the message is what the user needs
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if unreachable:
            raise MakemoreError(f"could not load Hugging Face dataset '{spec}': the hub cannot be reached from here "
                                "and the dataset is not in the cache; check the network, or download it and pass "
                                "--data PATH") from None
        raise MakemoreError(
            f"could not load Hugging Face dataset '{spec}' ({reason}); check the name, "
            "or download it and pass --data PATH"
        ) from None
    finally:
        if quiet:
            datasets.enable_progress_bars()


TEXT_COLUMNS = ("text", "sentence", "content", "review", "document", "tweet", "comment")
LABEL_COLUMNS = ("label", "labels", "class", "category", "sentiment", "target")
FALLBACKS = {"--text-column": TEXT_COLUMNS, "--label-column": LABEL_COLUMNS}  # the first of each is the default


def hf_splits(spec, columns, log=lambda _: None):
    """The splits of a Hugging Face dataset ({name: Dataset}) and the names of the columns it reads: columns
    maps a column to the option that names it. A default column the dataset lacks falls back to the first
    of the common names for it that the dataset has (--text-column text: sentence, content, ...), said
    through log; any other missing column is an error."""
    splits = open_hf(spec)
    first = next(iter(splits.values()))
    names = []
    for column, option in columns.items():
        common = FALLBACKS.get(option, ())
        if column not in first.column_names and common and column == common[0]:
            found = next((c for c in common if c in first.column_names), None)
            if found:
                log(f"data: column '{found}' read as the {'text' if option == '--text-column' else 'label'} "
                    f"(pass {option} to choose another)")
                column = found
        names.append(column)
        for split in splits.values():
            if column not in split.column_names:
                raise MakemoreError(
                    f"Hugging Face dataset '{spec}' has no column '{column}' "
                    f"(it has: {', '.join(split.column_names)}); pass {option} NAME"
                )
    return splits, names


def hf_rows(splits, columns, batch_size=4096):
    """A dataset's rows (tuples of the columns' values) in batches, all splits in order, read from its
    Arrow files as they are needed (datasets 5's Column, read value by value, is 75x slower). A row
    missing a value is left out; a class-label column gives its label names (a negative class, as a
    dataset's unlabeled test split holds, is a missing value)."""
    for split in splits:
        names = {c: split.features[c].int2str for c in columns if hasattr(split.features[c], "int2str")}
        for batch in split.select_columns(list(columns)).iter(batch_size=batch_size):
            values = [[v if v is None or c not in names else names[c](v) if v >= 0 else None for v in batch[c]]
                      for c in columns]
            yield [row for row in zip(*values) if None not in row]


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
        raise missing_data(source)
    check_readable(path, "data")
    files = sorted(path.glob("*.txt")) if path.is_dir() else [path]
    if not files:
        raise MakemoreError(f"data folder {path} holds no .txt files; pass a text file or a folder of .txt files")
    return path, files


def load_documents(source, encoding="utf-8", text_column="text", head=None):
    """The texts of a source: one per file, or one per row of a Hugging Face dataset.
    head: read at most about this many bytes of each file, or of the dataset's first rows (enough to
    guess the kind of a large source)."""
    if source.startswith("hf:"):
        (splits, (column,)), docs, size = hf_splits(source[3:], {text_column: "--text-column"}), [], 0
        for batch in hf_texts(splits.values(), column, batch_size=256 if head else 4096):
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
        splits, (text_column,) = hf_splits(source[3:], {text_column: "--text-column"}, log)
        splits = list(splits.values())

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
        name, reading, content = str(path.resolve()), codec_name(encoding), digest(path)

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
        shutil.rmtree(tmp, ignore_errors=True)  # left by a process of this id that was killed; a link is not followed
        tmp.mkdir(parents=True)
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


SPLIT_NAMES = {"train": "train", "validation": "val", "valid": "val", "dev": "val", "val": "val", "test": "test"}


def load_labeled_parts(cfg, log=print):
    """(item, label) pairs of a labeled source, in the source's order: {"all": pairs}, or, for a dataset
    with its own splits (train and validation or test), {"train": ..., "val": ..., "test": ...} of those
    that hold labels (other splits, such as an unlabeled one, are left out)."""
    if not cfg.data.startswith("hf:"):
        return {"all": load_labeled_pairs(cfg)}
    splits, (text, label) = hf_splits(cfg.data[3:], {cfg.text_column: "--text-column",
                                                     cfg.label_column: "--label-column"}, log)
    parts = {}
    for name, split in splits.items():
        pairs = [(str(t).strip(), label_text(v, cfg.data, label)) for batch in hf_rows([split], [text, label])
                 for t, v in batch]
        parts[name] = [(t, v) for t, v in pairs if t and v]
    named = {SPLIT_NAMES[n]: pairs for n, pairs in parts.items() if n in SPLIT_NAMES and pairs}
    if "train" in named and len(named) > 1:
        return named
    pairs = [pair for part in parts.values() for pair in part]
    if not pairs:
        raise MakemoreError(f"data {cfg.data} has no rows with both a text and a label; pass --text-column and "
                            "--label-column")
    return {"all": pairs}


def label_text(value, source, column):
    """A label as text: a whole number written as one (a CSV column of classes with a gap reads as floats). A
    decimal number is refused: a column of scores to predict by regression holds no classes."""
    if isinstance(value, float):
        if not value.is_integer():
            raise MakemoreError(f"the label column '{column}' of {source} holds decimal numbers ({value:g}), not "
                                "classes; a classifier needs a class per item: pass --label-column with a column of "
                                "classes, or bin the numbers into classes first")
        return str(int(value))
    return str(value).strip()


def load_labeled_pairs(cfg):
    """(item, label) pairs of a local labeled source (label<TAB>item lines, or a folder of <label>.txt), in
    the source's order."""
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


def resolve(cfg):
    """The data config as a run records it, so that it reads the same data again from any folder: a local
    path made absolute, and a table file (local or at a URL) read through datasets (hf:), its
    --text-column rather than its raw lines. A config resolved already is returned as it is."""
    data = cfg.data
    if not data.strip():  # else it would be read as the current folder
        raise MakemoreError("--data is empty; pass a text file or folder, hf:<dataset>, or a corpus name: "
                            f"{', '.join(CORPORA)}")
    if data not in CORPORA and not data.startswith("hf:") and Path(data).exists():
        data = os.path.abspath(data)
        if table_reader(data) or table_folder(data):
            data = "hf:" + data
    elif is_url(data) and table_kind(urllib.parse.urlparse(data).path):
        data = "hf:" + data
    elif data not in CORPORA and not data.startswith("hf:") and not is_url(data):
        raise missing_data(data)
    return cfg if data == cfg.data else dataclasses.replace(cfg, data=data)


def check_readable(path, what):
    """A file or folder that a user names must be one makemore can read to its end: a FIFO, a device or a socket
    (e.g. /dev/zero) would block or never end."""
    path = Path(path)
    if not (path.is_file() or path.is_dir()):
        raise MakemoreError(f"{what} {path} is not a regular file or folder (a FIFO, device or socket); pass a file")


def missing_data(source):
    return MakemoreError(f"data file {source} does not exist; pass --data PATH to a text file, or a corpus name: "
                         f"{', '.join(CORPORA)}")


def title(cfg):
    """The data's name in a plot title: a local file's or folder's own name (a table's too), else as given."""
    source = cfg.data.removeprefix("hf:")
    return Path(source).name if os.path.isabs(source) or is_url(source) else cfg.data
