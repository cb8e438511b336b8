import pytest

from makemore.errors import MakemoreError
from makemore.tokenizer import BOUNDARY, CharTokenizer


def test_round_trip_and_boundary_is_reserved():
    tok = CharTokenizer.from_text(["emma", "olivia", "zoë"])
    assert tok.vocab_size == len(set("emmaoliviazoë")) + 1
    ids = tok.encode("zoë mia".replace(" ", ""))
    assert BOUNDARY not in ids
    assert tok.decode(ids) == "zoëmia"
    assert tok.decode([BOUNDARY, *tok.encode("emma"), BOUNDARY]) == "emma"


def test_unknown_character_is_named():
    tok = CharTokenizer.from_text(["abc"])
    with pytest.raises(MakemoreError, match=r"'Z' \(U\+005A LATIN CAPITAL LETTER Z\) in the prefix"):
        tok.encode("aZ", what="the prefix")


def test_explicit_unk_maps_unknown_characters():
    tok = CharTokenizer.from_text(["abc"], unk=True)
    ids = tok.encode("axb")
    assert ids[1] == tok.unk_id == tok.vocab_size - 1
    assert tok.decode(ids) == "a\ufffdb"


def test_json_round_trip_and_validation():
    tok = CharTokenizer.from_text(["hello\tworld", "ünïcode"])
    again = CharTokenizer.from_json(tok.to_json())
    assert again.chars == tok.chars and again.encode("hello") == tok.encode("hello")
    with pytest.raises(MakemoreError, match="not valid JSON"):
        CharTokenizer.from_json("{broken")
    with pytest.raises(MakemoreError, match="not a makemore tokenizer"):
        CharTokenizer.from_json('{"format": 1, "chars": ["ab"]}')


def test_decode_rejects_ids_outside_the_vocabulary():
    tok = CharTokenizer.from_text(["ab"])
    with pytest.raises(MakemoreError, match="token id 9"):
        tok.decode([1, 9])


def test_from_counts_keeps_the_characters_seen_often_enough():
    tok = CharTokenizer.from_counts({"a": 9, "b": 5, "z": 1}, min_count=5)
    assert tok.chars == ["a", "b"] and tok.unk and tok.vocab_size == 4  # boundary, a, b, unknown
    assert tok.encode("abzq") == [1, 2, tok.unk_id, tok.unk_id]
    assert CharTokenizer.from_json(tok.to_json()).encode("zq") == [tok.unk_id] * 2
