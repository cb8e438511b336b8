"""Batches, drawn from tensors that live on the training device: only the few random indices of
a batch are made on the CPU, so drawing a batch costs no host-to-device copy of data. A
memory-mapped text stays on the CPU, and each batch's windows are copied to the device.
"""
import copy

import numpy as np
import torch

from makemore.errors import MakemoreError
from makemore.text import Text
from makemore.tokenizer import BOUNDARY, IGNORE

LONG_SPLIT_CHARS = 10**7  # a split of prose this long is slow to read whole: a figure of the train split
# reads this many of its characters, spread over it, and training says what a val split this long costs
MAX_ITEM_CHARS = 2_000_000  # a labeled item longer than this is refused: it is a corpus, not a document
MAX_PIECES = 64  # scoring reads at most this many pieces of a long item, spread over it
MAX_BUCKETS = 16  # a classifier's training rows fall into at most this many length buckets
BUCKET_ROWS = 1024  # and each bucket holds at least this many rows (so that a batch's items vary)
SCORED_CHARS_PER_ROW = 32  # scoring reads batches of at most eval_batch_size rows and this many characters a row



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


def item_rows(ids, what, max_input=None, compact=False):
    """Rows BOUNDARY + item, padded with BOUNDARY, and each row's length: (lengths, x). An item whose
    row is longer than a model reads (`max_input`, a transformer's block) is an error. compact: x in the
    smallest integer type that holds the ids (a batch reads them as long)."""
    lengths = torch.tensor([len(i) + 1 for i in ids])  # positions per row, the start token included (on the CPU)
    width = int(lengths.max()) if ids else 1
    if max_input is not None and width > max_input:
        raise MakemoreError(f"{what} has an item of {width - 1} characters, more than the {max_input - 1} that "
                            f"--block-size {max_input} reads; train with --block-size {width} or more, or leave that "
                            "item out")
    largest = max((max(seq, default=0) for seq in ids), default=0)
    dtype = (torch.int16 if largest < 2**15 else torch.int32) if compact else torch.long
    x = torch.full((len(ids), width), BOUNDARY, dtype=dtype)
    for row, seq in enumerate(ids):
        x[row, 1:len(seq) + 1] = torch.tensor(seq, dtype=dtype)
    return lengths, x


class LineBatches:
    """Items as rows: x = BOUNDARY + item, y = item + BOUNDARY, padded (x with BOUNDARY, y with IGNORE).

    Position t of a row predicts y[t] from x[<=t]; a model with a finite context sees BOUNDARY
    ids before the item's start, so the first prediction of every item reads BOUNDARY*block_size.
    """

    unit = "char"  # what n_targets counts: a target character

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

    def chars_of(self, x, y):
        """The characters a batch predicts."""
        return (y != IGNORE).sum()

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

    unit = "char"  # what n_targets counts: a target character

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

    chars_of = LineBatches.chars_of

    def __len__(self):
        return max(1, -(-(self.n - 1) // self.seq_len))  # sequences that cover the text once

    def char_frequencies(self):
        counts = torch.from_numpy(self.text.counts()).double()
        ids = torch.arange(len(counts)) if self.table is None else self.table.cpu()
        out = torch.zeros(int(ids.max()) + 1, dtype=torch.double).index_add_(0, ids, counts)
        out[BOUNDARY] = 0
        return out[:int(out.nonzero().max()) + 1].to(self.device)  # up to the largest id that occurs, as bincount

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

    @property
    def long(self):
        """Whether reading all of this split is slow (see LONG_SPLIT_CHARS)."""
        return self.n_targets > LONG_SPLIT_CHARS

    def spread(self, max_targets=None):
        """These batches, reading at most max_targets characters (LONG_SPLIT_CHARS unless given): whole
        windows spaced evenly over the text."""
        max_targets = max_targets or LONG_SPLIT_CHARS
        if self.n_targets <= max_targets or self.n - 1 <= self.seq_len:
            return self
        part = copy.copy(self)
        k = max(1, max_targets // self.seq_len)
        part.starts, part.n_targets = torch.linspace(0, self.n - 1 - self.seq_len, k).long(), k * self.seq_len
        return part


class LabeledBatches:
    """(item, label) pairs as rows: x = BOUNDARY + item, padded with BOUNDARY; y = the label id.

    A classifier reads positions 1..len(item) of a row (BOUNDARY never occurs inside an item). An item
    longer than max_len characters is cut: to its first max_len to train on (pieces=False), or into
    pieces of max_len that are each scored, an item's probabilities being the mean of its pieces'
    (pieces=True, see merged; at most MAX_PIECES of them, spread over the item), so that a document of
    any length is read in bounded time and memory.

    sample() draws rows of similar length together (length buckets), so that short items do not pay
    for the padding of long ones; every row is still drawn equally often (or every label, after
    balance()). iter_all() reads the rows longest first, as many to a batch as fit a budget of
    characters; merged() puts what was scored back in the items' order.
    """

    unit = "item"  # what n_targets counts: a label per item

    def __init__(self, pairs, tokenizer, device, what="data", max_input=None, max_len=None, pieces=False,
                 buckets=MAX_BUCKETS):
        limit = min([n for n in (max_len, None if max_input is None else max_input - 1) if n], default=None)
        rows, owner, self.cut = [], [], 0
        for i, (item, _) in enumerate(pairs):
            if len(item) > MAX_ITEM_CHARS:
                raise MakemoreError(f"{what} has an item of {len(item):,} characters (item {i + 1}); makemore reads "
                                    f"items of at most {MAX_ITEM_CHARS:,} (a document, not a corpus): split it, or "
                                    "train a language model on it as prose")
            ids = tokenizer.encode(item, f"{what} (item {i + 1}, {item[:40]!r}{'...' if len(item) > 40 else ''})")
            if limit is None or len(ids) <= limit:
                rows.append(ids)
                owner.append(i)
                continue
            self.cut += 1
            starts = range(0, len(ids), limit) if pieces else [0]
            if len(starts) > MAX_PIECES:  # evenly spread over the item: a document of any length costs the same
                starts = [starts[k * (len(starts) - 1) // (MAX_PIECES - 1)] for k in range(MAX_PIECES)]
            for at in starts:
                rows.append(ids[at:at + limit])
                owner.append(i)
        self.lengths, x = item_rows(rows, what, compact=True)
        self.labels = torch.tensor([label for _, label in pairs], dtype=torch.long)
        self.owner = torch.tensor(owner, dtype=torch.long) if len(rows) > len(pairs) else None
        self.x, self.y = x.to(device), self.labels[owner].to(device)
        self.n_buckets = buckets
        self.n_targets = len(pairs)
        self.index()

    def index(self):
        """The rows' order for scoring (longest first) and their length buckets for sampling."""
        self.longest_first = torch.sort(self.lengths, descending=True, stable=True).indices
        n_buckets = max(1, min(self.n_buckets, len(self.lengths) // BUCKET_ROWS))
        self.buckets = self.longest_first.flip(0).tensor_split(n_buckets)  # rows of similar length, shortest first
        self.row_weights = None  # balance(): each row's chance to be drawn
        self.mass = torch.tensor([float(len(b)) for b in self.buckets])  # each bucket's share of the draws

    def __len__(self):
        return self.n_targets

    def row_owner(self):
        """The item of each row."""
        return torch.arange(len(self.lengths)) if self.owner is None else self.owner

    def char_frequencies(self):
        return char_frequencies(self.x.long())

    def chars_of(self, x, y):
        """The characters a batch holds: its items' (the start token and the padding are BOUNDARY)."""
        return (x != BOUNDARY).sum()

    def balance(self):
        """Draw every label equally often."""
        self.row_weights = (1.0 / torch.bincount(self.labels)[self.labels].double())[self.row_owner()]
        self.mass = torch.stack([self.row_weights[b].sum() for b in self.buckets])

    def _rows(self, rows):
        width = int(self.lengths[rows].max())  # trim the padding that no row of this batch needs
        rows = rows.to(self.x.device, non_blocking=True)
        return self.x[rows, :width].long(), self.y[rows]

    def sample(self, batch_size, generator):
        """A batch of one length bucket, the bucket drawn by its share of the rows (or of their weights):
        each row is drawn as often as if the batch were drawn from all rows."""
        w = self.row_weights
        bucket = self.buckets[int(torch.multinomial(self.mass, 1, generator=generator)) if len(self.mass) > 1 else 0]
        if w is None:
            picked = torch.randint(len(bucket), (batch_size,), generator=generator)
        else:
            picked = torch.multinomial(w[bucket], batch_size, replacement=True, generator=generator)
        return self._rows(bucket[picked])

    def iter_all(self, batch_size):
        """Every row once, longest first, in batches of at most batch_size rows and batch_size *
        SCORED_CHARS_PER_ROW characters."""
        budget, start = batch_size * SCORED_CHARS_PER_ROW, 0
        while start < len(self.longest_first):
            width = int(self.lengths[self.longest_first[start]])
            end = min(start + batch_size, start + max(1, budget // width), len(self.longest_first))
            yield self._rows(self.longest_first[start:end])
            start = end

    def merged(self, logp, y):
        """What iter_all's batches gave, (rows, C) log-probabilities and (rows,) labels, as (items, C) and
        (items,) in the items' order: an item cut into pieces gets the mean of its pieces' probabilities."""
        order = torch.empty_like(self.longest_first)
        order[self.longest_first] = torch.arange(len(order))
        logp = logp[order]
        if self.owner is None:
            return logp, y[order]
        pieces = torch.bincount(self.owner, minlength=self.n_targets).to(logp.dtype)
        mean = torch.zeros(self.n_targets, logp.shape[1], dtype=logp.dtype).index_add_(0, self.owner, logp.exp())
        return (mean / pieces[:, None]).log(), self.labels.clone()

    def sampled(self, n, seed=0):
        """At most n of these items, drawn once from seed, as LabeledBatches of their own: a fixed sample
        that scores the train split while training, at the cost of n items whatever the split's size."""
        if n >= self.n_targets:
            return self
        keep = torch.randperm(self.n_targets, generator=torch.Generator().manual_seed(seed))[:n].sort().values
        rows = torch.isin(self.row_owner(), keep).nonzero()[:, 0]
        part = copy.copy(self)
        part.lengths, part.labels, part.n_targets = self.lengths[rows], self.labels[keep], len(keep)
        part.x, part.y = self.x[rows.to(self.x.device)], self.y[rows.to(self.y.device)]
        part.owner = None if self.owner is None else torch.searchsorted(keep, self.owner[rows])
        part.index()
        return part


def make_batches(corpus, tokenizer, device, seq_len=128, context_size=None, max_input=None, source=None, reverse=False,
                 max_item_len=None):
    """Batches for every non-empty split, keyed by split name. Errors name the split, or source if given.
    reverse: the model reads each item (or the text) right to left; the corpus keeps reading order.
    max_item_len: a classifier trains on the first max_item_len characters of a longer item, and scores
    it in pieces of that length (see LabeledBatches).

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
        if (
            reverse and corpus.kind == "lines"
        ):  # language models only: a classifier reads both ways with a second body instead
            part = [item[::-1] for item in part]
        if corpus.kind == "labeled":
            out[name] = LabeledBatches(part, tokenizer, device, what, max_input, max_item_len, pieces=name != "train")
        elif corpus.kind == "lines":
            out[name] = LineBatches(part, tokenizer, device, what, max_input)
        else:
            burn_in = seq_len if max_input is None else max_input - seq_len
            warmup = context_size - 1 if context_size else (0 if name == "train" else burn_in)
            out[name] = StreamBatches(part, tokenizer, device, seq_len, warmup, what, reverse)
    return out
