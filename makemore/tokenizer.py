"""Character-level tokenizer: every distinct character of the training text gets an id.

Id 0 is reserved for the boundary token that marks the start and end of an item in line
corpora, so it never collides with a data character. An unknown character is an error that
names it, unless the tokenizer was built with an explicit UNK id (`--min-char-count`): then every
character it does not know reads as that id, and decodes as U+FFFD.
"""
import json
import unicodedata

from makemore.errors import MakemoreError

FORMAT_VERSION = 1
BOUNDARY = 0
IGNORE = -1  # target id that the loss skips: padding after an item, context-only positions


def describe_char(ch):
    """A character as a person can read it in an error message: 'é' (U+00E9 LATIN SMALL LETTER E WITH ACUTE)."""
    name = unicodedata.name(ch, "CONTROL CHARACTER" if unicodedata.category(ch) == "Cc" else "UNNAMED")
    return f"{ch!r} (U+{ord(ch):04X} {name})"


def chars_of(texts):
    """The distinct characters of some strings, sorted: what a tokenizer of them knows."""
    return "".join(sorted(set().union(*map(set, texts))))


class CharTokenizer:
    def __init__(self, chars, unk=False):
        self.chars = list(chars)  # data characters, ids 1..len(chars)
        self.unk = unk  # if true, one more id stands for every unknown character
        self.stoi = {ch: i + 1 for i, ch in enumerate(self.chars)}
        self.itos = {i: ch for ch, i in self.stoi.items()}
        self.unk_id = len(self.chars) + 1 if unk else None

    @classmethod
    def from_text(cls, items, unk=False):
        """Build the vocabulary from a string or an iterable of strings."""
        return cls(chars_of([items] if isinstance(items, str) else items), unk=unk)

    @classmethod
    def from_counts(cls, counts, min_count):
        """The characters seen at least min_count times (counts: {character: occurrences}), and one
        unknown-character id for the rest and for any character met later."""
        return cls(sorted(ch for ch, n in counts.items() if n >= min_count), unk=True)

    @property
    def vocab_size(self):
        return len(self.chars) + 1 + (1 if self.unk else 0)

    def encode(self, text, what="text"):
        ids = []
        for ch in text:
            i = self.stoi.get(ch, self.unk_id)
            if i is None:
                raise MakemoreError(
                    f"character {describe_char(ch)} in {what} is not in this model's vocabulary "
                    f"({self.vocabulary_summary()}); remove it, or retrain on text that contains it"
                )
            ids.append(i)
        return ids

    def decode(self, ids):
        """Ids to text; boundary tokens are dropped and the UNK id becomes U+FFFD."""
        out = []
        for i in ids:
            i = int(i)
            if i == BOUNDARY:
                continue
            if i == self.unk_id:
                out.append("\ufffd")
            elif i in self.itos:
                out.append(self.itos[i])
            else:
                raise MakemoreError(f"token id {i} is outside this tokenizer's vocabulary of {self.vocab_size}")
        return "".join(out)

    def vocabulary_summary(self, limit=40):
        shown = "".join(ch if ch.isprintable() and not ch.isspace() else repr(ch)[1:-1] for ch in self.chars[:limit])
        more = f" and {len(self.chars) - limit} more" if len(self.chars) > limit else ""
        return f"it knows {len(self.chars)} characters: {shown}{more}"

    def to_json(self):
        return json.dumps({"format": FORMAT_VERSION, "chars": self.chars, "unk": self.unk}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise MakemoreError(f"tokenizer file is not valid JSON ({e}); the run directory is damaged") from None
        ok = (
            isinstance(obj, dict)
            and obj.get("format") == FORMAT_VERSION
            and isinstance(obj.get("chars"), list)
            and all(isinstance(c, str) and len(c) == 1 for c in obj["chars"])
            and len(set(obj["chars"])) == len(obj["chars"])
            and isinstance(obj.get("unk", False), bool)
        )
        if not ok:
            raise MakemoreError(
                f"tokenizer file is not a makemore tokenizer of format {FORMAT_VERSION}; "
                "the run directory is damaged or from another version"
            )
        return cls(obj["chars"], unk=obj.get("unk", False))
