"""Corpora and their splits.

A *lines* corpus holds one item per line (names, words): items are de-duplicated and shuffled into
train / val / test from a seed, so no item is in two splits. A *stream* corpus is one long text
(prose), cut into contiguous train / val / test parts, held as compact character ids
(makemore.text). A *labeled* corpus pairs items with labels (a folder of `<label>.txt` files, or
`label<TAB>text` lines): (item, label) pairs are de-duplicated and split per label (stratified), an
item with two labels keeping both in one split. A language model trained on a labeled corpus reads
its items in that same split, so pretraining never sees a classifier's val or test items.
"""
import dataclasses
import hashlib
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from makemore.config import DataConfig
from makemore.data.sources import (
    CORPORA,
    GUESS_BYTES,
    is_large,
    item_lines,
    load_documents,
    load_labeled_parts,
    load_text,
    resolve,
)
from makemore.errors import MakemoreError
from makemore.text import Text
from makemore.tokenizer import chars_of

MAX_ITEM_LEN = 2000  # longer lines belong to prose: a line corpus pads every item to its longest



@dataclass
class Corpus:
    kind: str  # "lines" or "stream"
    train: list | Text  # items (lines) or text (stream: slices of one Text)
    val: list | Text
    test: list | Text
    config: DataConfig | None = None  # the data config that reads it again: its source resolved, its kind decided

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
    config: DataConfig | None = None

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
        return Corpus("lines", items(self.train + self.unused), items(self.val), items(self.test), config=self.config)


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


def split_labeled(parts, cfg, log=print):
    """Split distinct (item, label) pairs per label (stratified) from cfg.split_seed; parts: {"all": pairs},
    or a source's own splits {"train": pairs, "val": ..., "test": ...}, which are kept, a missing val or
    test split being drawn from train as from "all".

    An item is the unit of the split: an item with two labels goes, with both, to the split drawn
    for its first label, so no item is in two splits (an item of a source's own test split is left out
    of its val and train splits, one of its val split out of train). --label-frac then keeps that share
    of each label's train pairs (at least one), picked from cfg.label_seed.
    """
    pairs = [pair for part in parts.values() for pair in part]
    labels = sorted({label for _, label in pairs})
    if len(labels) < 2:
        raise MakemoreError(f"data {cfg.data} has one class only ({labels[0]}); a classifier needs at least 2 labels")
    index = {label: i for i, label in enumerate(labels)}
    split = {name: labels_by_item(parts.get(name, []), index) for name in ("train", "val", "test")}
    if "all" in parts:
        split["train"] = labels_by_item(parts["all"], index)
    given = [name for name in ("val", "test") if name in parts]
    if given:
        taken = 0
        for name, later in (("val", ("test",)), ("train", ("val", "test"))):
            for other in later:
                for item in split[other]:
                    taken += split[name].pop(item, None) is not None
        if taken:
            log(f"data: {taken:,} items of the dataset's train or val split are also in a later split; each is kept "
                "in the later one only")
        log(f"data: the dataset's own splits ({', '.join(['train', *given])}) are kept"
            + (f"; {' and '.join(n for n in ('val', 'test') if n not in given)} drawn from train"
               if len(given) < 2 else ""))
    rng = random.Random(cfg.split_seed)
    fractions = {"val": 0.0 if "val" in given else cfg.val_frac, "test": 0.0 if "test" in given else cfg.test_frac}
    strata = [[] for _ in labels]
    for item, ids in split["train"].items():
        strata[ids[0]].append(item)
    drawn = {"train": [], "val": [], "test": []}
    for items in strata:
        rng.shuffle(items)
        n_val, n_test = round(len(items) * fractions["val"]), round(len(items) * fractions["test"])
        chunks = {"val": items[:n_val], "test": items[n_val:n_val + n_test], "train": items[n_val + n_test:]}
        for name, chunk in chunks.items():
            drawn[name] += [(item, i) for item in chunk for i in split["train"][item]]
    for name in given:
        drawn[name] = [(item, i) for item, ids in split[name].items() for i in ids]
    if not drawn["train"] or not drawn["val"]:
        empty = "train" if not drawn["train"] else "val"
        n_items = len({item for part in split.values() for item in part})
        raise MakemoreError(f"data {cfg.data} has too few items ({n_items}) to split: the {empty} split gets "
                            f"none (--val-frac {cfg.val_frac} and --test-frac {cfg.test_frac} of each label's items, "
                            "rounded); give more items, or other --val-frac / --test-frac")
    picked, unused = drawn["train"], []
    if cfg.label_frac < 1:
        rng = random.Random(cfg.label_seed)
        picked = []
        for i in range(len(labels)):
            of_label = [p for p in drawn["train"] if p[1] == i]
            rng.shuffle(of_label)
            keep = max(1, round(len(of_label) * cfg.label_frac)) if of_label else 0
            picked += of_label[:keep]
            unused += of_label[keep:]
    return LabeledCorpus(labels, picked, drawn["val"], drawn["test"], unused)


def labels_by_item(pairs, index):
    """{item: its label ids, first seen first} of (item, label) pairs, in the pairs' order."""
    labels_of = {}
    for item, label in pairs:
        labels_of.setdefault(item, []).append(index[label])
    return labels_of


def kept_once(entries, what, log):
    """The entries de-duplicated, first seen first; says how many repeats were dropped."""
    distinct = list(dict.fromkeys(entries))
    if len(distinct) < len(entries):
        log(f"data: {len(entries):,} {what}, {len(distinct):,} distinct: each is kept once, so none is in two splits")
    return distinct


def load_corpus(cfg, log=print, labeled=False, as_recorded=False):
    """The corpus of a data config, with the config that reads it again (corpus.config). labeled=True
    (classifiers) reads (item, label) pairs; a language model on a labeled source reads its items, in the
    labeled split (labeled=False); labeled=None reads pairs where the source is labeled. as_recorded: cfg is
    a run's, read as it was recorded rather than resolved again (a
    .csv file that an earlier makemore read as lines stays so)."""
    cfg = cfg if as_recorded else resolve(cfg)
    kind, docs = decided_kind(cfg, labeled, log)
    cfg = dataclasses.replace(cfg, kind=kind)
    corpus = read_corpus(cfg, docs, labeled, log)
    corpus.config = cfg
    return corpus


def decided_kind(cfg, labeled, log):
    """The kind of a source (--kind, or a guess that is said), and the texts read to guess it, if whole."""
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
    return kind, docs


def read_corpus(cfg, docs, labeled, log):
    """The corpus of a source of a known kind (cfg.kind); docs: its texts, if read already."""
    kind = cfg.kind
    if kind == "labeled" and cfg.data in CORPORA and CORPORA[cfg.data].kind != "labeled":  # transfer's LM too
        labeled_names = ", ".join(name for name, spec in CORPORA.items() if spec.kind == "labeled")
        raise MakemoreError(f"corpus '{cfg.data}' has no labels; a classifier needs labeled data: pass --data "
                            f"{labeled_names}, a file of label<TAB>item lines or a folder of <label>.txt files")
    if labeled and kind != "labeled":
        raise MakemoreError(f"a classifier needs labeled data (label<TAB>item lines or a folder of <label>.txt files), "
                            f"not --kind {kind}: drop --kind or pass --kind labeled")
    if kind == "labeled":
        parts = {name: kept_once(pairs, f"(item, label) pairs{'' if name == 'all' else ' in ' + name}", log)
                 for name, pairs in load_labeled_parts(cfg, log).items()}
        corpus = split_labeled(parts, cfg, log)
        return corpus if labeled or labeled is None else corpus.as_lines()
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
    cfg = resolve(cfg)
    if cfg.kind == "labeled":
        pairs = [pair for part in load_labeled_parts(cfg, log=lambda _: None).values() for pair in part]
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

