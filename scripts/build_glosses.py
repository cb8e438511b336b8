"""Build data/glosses.tsv and data/glosses_unlabeled.txt from WordNet 3.0 (Debian's wordnet-base).

WordNet (Princeton University; licence in data/README.md) files every noun sense under one of 25
lexicographer categories (noun.animal, noun.plant, ...) and gives it a gloss: a one-sentence
definition, often followed by quoted examples. A sentence classifier's task: read a definition and
name its category.

- glosses.tsv: `category<TAB>definition` lines, up to --per-label definitions of each of --labels,
  drawn from --seed; a definition shared by senses of two categories is left out (it is ambiguous).
- glosses_unlabeled.txt: unlabeled text for pretraining a language model: the definitions and
  examples of every other WordNet sense (verbs, adjectives, adverbs, nouns of the other
  categories and those not drawn), one a line, shuffled, cut at --unlabeled-chars, without a line
  that is or contains an item of glosses.tsv (so it holds no item of any of its splits).

With --labels all and --per-label 0 it writes the whole noun set (82,000 definitions, 25 labels),
the larger set the docs confirm the recipe on.

    apt-get install wordnet-base && python scripts/build_glosses.py
"""
import argparse
import bisect
import random
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORDNET = Path("/usr/share/wordnet")
CATEGORIES = ["Tops", "act", "animal", "artifact", "attribute", "body", "cognition", "communication", "event",
              "feeling", "food", "group", "location", "motive", "object", "person", "phenomenon", "plant",
              "possession", "process", "quantity", "relation", "shape", "state", "substance",
              "time"]  # the noun lexicographer files 03-28, in order
LABELS = "animal,artifact,food,location,person,plant"


def senses(part):
    """(lexicographer file number, definition, examples) of every sense in data.<part>."""
    with open(WORDNET / f"data.{part}", encoding="latin-1") as f:
        for line in f:
            if line.startswith("  "):  # the licence at the top
                continue
            fields, _, gloss = line.partition(" | ")
            definition, *examples = gloss.strip().split("; \"")
            yield int(fields.split(" ")[1]), definition.strip(), [e.strip().strip('"') for e in examples]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", default=LABELS, help="noun categories to keep, comma-separated, or 'all'")
    parser.add_argument("--per-label", type=int, default=1500, help="definitions of each label (0: all)")
    parser.add_argument("--unlabeled-chars", type=int, default=1_500_000, help="size of the unlabeled text (0: all)")
    parser.add_argument("--seed", type=int, default=1, help="which definitions are drawn")
    parser.add_argument("--out", type=Path, default=ROOT / "data", help="output directory")
    parser.add_argument("--name", default="glosses", help="file names: NAME.tsv and NAME_unlabeled.txt")
    args = parser.parse_args()
    if not (WORDNET / "data.noun").exists():
        raise SystemExit(f"error: {WORDNET}/data.noun is missing; install Debian's wordnet-base")

    labels = CATEGORIES[1:] if args.labels == "all" else args.labels.split(",")
    categories_of = defaultdict(set)
    for lex, definition, _ in senses("noun"):
        categories_of[definition].add(CATEGORIES[lex - 3])
    by_label = defaultdict(list)
    for definition, categories in categories_of.items():
        if len(categories) == 1 and (label := next(iter(categories))) in labels:
            by_label[label].append(definition)
    rng = random.Random(args.seed)
    pairs = []
    for label in labels:
        drawn = sorted(by_label[label])
        rng.shuffle(drawn)
        pairs += [(label, d) for d in drawn[:args.per_label or None]]
    rng.shuffle(pairs)
    items = {d for _, d in pairs}

    unlabeled, size = [], 0
    for part in ("noun", "verb", "adj", "adv"):
        for _, definition, examples in senses(part):
            for line in [definition, *examples]:
                if line and line not in items:
                    unlabeled.append(line)
                    size += len(line) + 1
    if args.unlabeled_chars:
        rng.shuffle(unlabeled)  # a sample of every part of speech, not the nouns alone
        kept, size = [], 0
        for line in unlabeled:
            if size + len(line) + 1 > args.unlabeled_chars:
                break
            kept.append(line)
            size += len(line) + 1
        unlabeled = kept
    text = "\n".join(unlabeled)
    starts = [0]
    for line in unlabeled:
        starts.append(starts[-1] + len(line) + 1)
    holding = set()  # lines that hold an item: the leakage check of `makemore finetune` would find it there
    for item in items:
        at = text.find(item)
        while at >= 0:
            holding.add(bisect.bisect_right(starts, at) - 1)
            at = text.find(item, at + 1)
    unlabeled = [line for k, line in enumerate(unlabeled) if k not in holding]
    size = sum(len(line) + 1 for line in unlabeled)

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.tsv").write_text("".join(f"{label}\t{d}\n" for label, d in pairs), encoding="utf-8")
    (args.out / f"{args.name}_unlabeled.txt").write_text("\n".join(unlabeled) + "\n", encoding="utf-8")
    print(f"wrote {len(pairs):,} definitions in {len(labels)} labels and {size:,} characters of unlabeled text "
          f"to {args.out}")


if __name__ == "__main__":
    main()
