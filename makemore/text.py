"""Prose as an array of character ids, so that a long text costs one or two bytes a character.

A Text numbers its distinct characters in sorted order from 1, as CharTokenizer does (id 0 is
the boundary token), and holds the ids in a 1-D numpy array: in memory, or memory-mapped from a
file in the cache (data.py writes it) for a text too large to hold. Its splits are slices, views
of the same array. Encoding is a table lookup over the text's code points, not a Python loop.
"""
import numpy as np

N_CODEPOINTS = 0x110000
CHUNK_CHARS = 1 << 22  # characters encoded at a time


def id_dtype(n_ids):
    """The smallest numpy integer type that holds ids 0..n_ids - 1 and that torch can index with."""
    return np.uint8 if n_ids <= 256 else np.int16 if n_ids <= 1 << 15 else np.int32


def codepoints(text):
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def encode(pieces, allocate):
    """A text's characters, sorted, and its ids. pieces(): the text's pieces, the same each time it is
    called (it is read twice: for its characters, then for their ids); allocate(length, dtype): the
    1-D array the ids are written into, in memory or on disk."""
    counts, length = np.zeros(N_CODEPOINTS, dtype=np.int64), 0
    for piece in pieces():
        cp = codepoints(piece)
        counts += np.bincount(cp, minlength=N_CODEPOINTS)
        length += len(cp)
    present = np.flatnonzero(counts)
    dtype = id_dtype(len(present) + 1)
    table = np.zeros(N_CODEPOINTS, dtype=dtype)
    table[present] = np.arange(1, len(present) + 1)
    ids, at = allocate(length, dtype), 0
    for piece in pieces():
        ids[at:at + len(piece)] = table[codepoints(piece)]
        at += len(piece)
    return "".join(map(chr, present)), ids


def pieces_of(text, size=CHUNK_CHARS):
    return lambda: (text[at:at + size] for at in range(0, len(text), size))


class Text:
    """chars: the distinct characters, sorted (chars[k - 1] has id k); ids: a 1-D numpy array."""

    def __init__(self, chars, ids):
        self.chars, self.ids = chars, ids

    @classmethod
    def of(cls, text):
        """The Text of a string, encoded piece by piece so that the work memory stays small."""
        return cls(*encode(pieces_of(text), np.empty))

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, part):
        return Text(self.chars, self.ids[part])

    def __str__(self):
        return "".join(np.array([""] + list(self.chars))[self.ids])

    def byte_chunks(self, chunk=1 << 24):
        """The ids' bytes, chunk ids at a time: a mapped text is never whole in memory."""
        for start in range(0, len(self.ids), chunk):
            yield np.ascontiguousarray(self.ids[start:start + chunk]).tobytes()

    def counts(self, chunk=1 << 24):
        """How often each id occurs (index 0, the boundary, is 0), read in chunks: a mapped text is never
        whole in memory."""
        out = np.zeros(len(self.chars) + 1, dtype=np.int64)
        for start in range(0, len(self.ids), chunk):
            out += np.bincount(self.ids[start:start + chunk], minlength=len(out))
        return out
