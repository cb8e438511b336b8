"""makemore inspect: a run's embeddings, its tanh layers' saturation, a bigram's table."""
import re
import shutil

import pytest
import torch
from conftest import TINY_CLF, assert_user_error, run, tiny_args

from makemore import inspection
from makemore.runs import Run
from makemore.tokenizer import BOUNDARY, IGNORE

PNG = b"\x89PNG\r\n\x1a\n"


def test_inspect_draws_an_mlps_embeddings_and_the_saturation_of_its_tanh_layers(trained_run, tmp_path):
    copy = tmp_path / "tiny"
    shutil.copytree(trained_run, copy)
    result = run("inspect", "--run", copy)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    vocab = Run.open(copy).tokenizer.vocab_size
    assert re.fullmatch(
        re.escape(f"embeddings: {copy / 'embeddings.png'} ({vocab} characters in 8 dimensions, drawn by ")
        + r"direction on their 2 principal components: \d+% and \d+% of the spread\)",
        lines[0],
    ), lines[0]
    assert lines[1].startswith(f"activations: {copy / 'activations.png'} (1 tanh layer, on 256 val items: ")
    assert lines[2].split() == ["layer", "mean", "std", "saturated", "dead", "units"]
    name, mean, std, saturated, dead, _, units = lines[3].split()
    assert name == "hidden.0" and units == "64" and 0 <= int(dead) <= 64
    assert -1 <= float(mean) <= 1 and 0 < float(std) <= 1 and 0 <= float(saturated.rstrip("%")) <= 100
    for png in ("embeddings.png", "activations.png"):
        assert (copy / png).read_bytes().startswith(PNG)


def test_saturation_counts_saturated_outputs_and_dead_units():
    h = torch.tensor([[0.99, 0.98, 0.0], [-0.99, 0.1, 0.0], [0.98, -0.99, 0.0], [-1.0, 0.2, 0.0]])  # (positions, units)
    f = inspection.saturation(h, bins=4)
    assert f["saturated"] == pytest.approx(6 / 12)
    assert f["dead"] == 1 and f["units"] == 3  # unit 0 is saturated at every position
    assert f["per_unit"] == [1.0, 0.5, 0.0]
    assert f["histogram"] == pytest.approx([3 / 12, 0, 6 / 12, 3 / 12])  # bins [-1, -.5), [-.5, 0), [0, .5), [.5, 1]
    assert f["mean"] == pytest.approx(h.mean().item()) and f["std"] == pytest.approx(h.std().item())


def test_the_embedding_map_draws_directions_and_keeps_them_where_they_lie_on_a_plane():
    torch.manual_seed(0)
    basis = torch.linalg.qr(torch.randn(6, 2))[0].T  # (2, 6): a plane through the origin of six dimensions
    table = torch.randn(10, 2) @ basis  # ten embeddings in that plane
    coords, shares = inspection.embedding_map(table)
    assert coords.shape == (10, 2)
    directions = table / table.norm(dim=1, keepdim=True)  # in the plane too: the map keeps their distances
    assert torch.allclose(torch.cdist(coords, coords), torch.cdist(directions, directions), atol=1e-5)
    assert sum(shares) == pytest.approx(1.0) and shares[0] >= shares[1]
    longer = table.clone()
    longer[3] *= 10  # a longer vector of the same direction lands at the same place
    assert torch.allclose(inspection.embedding_map(longer)[0].abs(), coords.abs(), atol=1e-5)
    two = torch.randn(5, 2)
    assert inspection.embedding_map(two) == (two, None)  # two dimensions are drawn as they are


def test_tanh_outputs_are_read_at_the_positions_a_model_reads(words_file, labeled_folder, tmp_path):
    assert run("train", "--data", words_file, "--out-dir", tmp_path, "--name", "mlp", "--n-layer", 2,
               *tiny_args(max_steps=20)).exit_code == 0
    lm = Run.open(tmp_path / "mlp")
    model, _ = lm.load_model()
    x = torch.tensor([[BOUNDARY, 3, 4, 5], [BOUNDARY, 6, BOUNDARY, BOUNDARY]])  # two items, the second padded
    y = torch.tensor([[3, 4, 5, BOUNDARY], [6, BOUNDARY, IGNORE, IGNORE]])
    outputs = inspection.tanh_outputs(model, x, y)
    assert list(outputs) == ["hidden.0", "hidden.1"]
    assert all(h.shape == (6, 64) for h in outputs.values())  # 4 + 2 positions predicted from
    features = model.body(x)[y != IGNORE]  # the last tanh layer's outputs are the body's features
    assert torch.allclose(outputs["hidden.1"], features)

    assert (
        run("train", "--model", "classifier", "--encoder", "mlp", "--bidirectional", "true", "--data", labeled_folder,
            "--out-dir", tmp_path, "--name", "clf", "--max-steps", 10, *TINY_CLF).exit_code
        == 0
    )
    model, _ = Run.open(tmp_path / "clf").load_model()
    labels = torch.tensor([0, 1])  # a classifier reads the items' characters
    outputs = inspection.tanh_outputs(model, x, labels)
    assert list(outputs) == ["encoder.hidden.0", "backward.hidden.0"]
    assert all(h.shape == (4, 32) for h in outputs.values())


def test_inspect_draws_a_bigrams_table(words_file, tmp_path):
    assert (
        run("train", "--model", "bigram", "--data", words_file, "--out-dir", tmp_path, "--name", "bigram").exit_code
        == 0
    )
    result = run("inspect", "--run", tmp_path / "bigram")
    assert result.exit_code == 0, result.output
    bigram = Run.open(tmp_path / "bigram")
    vocab = bigram.tokenizer.vocab_size
    table = f"the {vocab} x {vocab} table of next-character probabilities"
    assert result.stdout == f"bigram: {tmp_path / 'bigram' / 'bigram.png'} ({table})\n"
    assert (tmp_path / "bigram" / "bigram.png").read_bytes().startswith(PNG)
    model, _ = bigram.load_model()
    probs = inspection.bigram_table(model)
    assert torch.allclose(probs, model.W.exp())  # counts fit the log-probabilities themselves
    assert torch.allclose(probs.sum(1), torch.ones(vocab))


def test_inspect_of_a_model_without_tanh_layers_needs_no_data(words_file, tmp_path):
    data = tmp_path / "gone.txt"
    shutil.copy(words_file, data)
    assert run("train", "--model", "lstm", "--data", data, "--out-dir", tmp_path, "--name", "lstm",
               *tiny_args(max_steps=10)).exit_code == 0
    data.unlink()
    result = run("inspect", "--run", tmp_path / "lstm")
    assert result.exit_code == 0, result.output
    drawn = "activations: lstm has no tanh layers to draw (an MLP's and a WaveNet's are drawn)"
    assert result.stdout.splitlines()[1] == drawn
    assert (tmp_path / "lstm" / "embeddings.png").exists() and not (tmp_path / "lstm" / "activations.png").exists()


def test_inspect_bad_input(words_file, tmp_path):
    assert_user_error(run("inspect", "--run", tmp_path / "nothing"), "is not a makemore run")
    data = tmp_path / "gone.txt"
    shutil.copy(words_file, data)
    assert run("train", "--data", data, "--out-dir", tmp_path, "--name", "mlp", *tiny_args(max_steps=10)).exit_code == 0
    data.unlink()  # the activations are measured on the val split
    assert_user_error(run("inspect", "--run", tmp_path / "mlp"), "cannot read the val split", "put the data back")


def test_char_labels_tell_the_boundary_from_a_full_stop():
    from makemore.tokenizer import CharTokenizer

    assert inspection.char_labels(CharTokenizer.from_text(["ab c"])) == [".", "\u2423", "a", "b", "c"]
    prose = inspection.char_labels(CharTokenizer.from_text(["Stop.\n"], unk=True))
    assert prose == ["<.>", "\\n", ".", "S", "o", "p", "t", "\ufffd"]  # the boundary, then the data's own '.'


def test_a_large_vocabulary_of_characters_the_font_lacks_draws_quietly_and_small(tmp_path):
    import random
    import struct
    import warnings

    rng = random.Random(0)
    chars = [chr(0x4E00 + i) for i in range(300)]  # CJK ideographs: DejaVu Sans has none of them
    data = tmp_path / "cjk.txt"
    data.write_text("\n".join("".join(rng.choices(chars, k=3)) for _ in range(3000)) + "\n", encoding="utf-8")
    assert run("train", "--model", "bigram", "--data", data, "--out-dir", tmp_path, "--name", "bigram").exit_code == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning per missing glyph would fail here
        result = run("inspect", "--run", tmp_path / "bigram")
    assert result.exit_code == 0, result.output
    assert "the 301 x 301 table" in result.stdout
    width, height = struct.unpack(">II", (tmp_path / "bigram" / "bigram.png").read_bytes()[16:24])
    assert width <= 2000 and height <= 2000  # 301 characters at the size of 27 each would be 11,000 pixels


def test_a_figure_that_cannot_be_written_is_a_one_line_error(trained_run, tmp_path):
    from conftest import snapshot

    copy = tmp_path / "tiny"
    shutil.copytree(trained_run, copy)
    (copy / "embeddings.png").mkdir()  # in the way of the figure, as a full disk or a read-only folder would be
    before = snapshot(copy)
    assert_user_error(run("inspect", "--run", copy), "embeddings.png is not a regular file")
    assert snapshot(copy) == before
