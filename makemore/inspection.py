"""Inside a trained model, as the lectures look inside theirs (`makemore inspect`).

- Embeddings (part 2): each character's embedding vector as a point. A 2-dimensional embedding (the
  lecture's) is drawn as it is. A wider one is drawn by its direction: each vector scaled to unit
  length, so that the map compares directions (cosine similarity) rather than lengths, then projected
  on the two directions along which those spread most (principal components), each with its share of
  the spread. The lengths would otherwise fill the map: rare characters' embeddings grow longest (in
  the default MLP on names, q's is 6.6 long, a's 2.2), and the common ones crowd in the middle.
  Characters the model treats alike land close together: in names, the vowels.
- Activations (part 3): what each tanh layer outputs on a batch of the val split, and how much of it
  is saturated: where |tanh| > 0.97 its gradient, 1 - tanh^2, is under 0.06, so almost nothing flows
  back. A unit saturated at every position read is dead: it cannot learn any more.
- A bigram has neither; its whole model is the table of part 1: the probability of each next
  character after each character.
"""
import torch
from torch import nn

from makemore.tokenizer import BOUNDARY, IGNORE

SATURATED = 0.97  # the lectures' threshold
ACTIVATION_BATCH = 256  # val items (or sequences of prose) read to measure the activations


def char_labels(tokenizer):
    """Each id's character as a plot can show it: '.' for the boundary token (the lectures' mark of an
    item's start and end; '<.>' where '.' is a character of the data, as in prose), a visible mark for
    whitespace and for the unknown-character id."""
    shown = {" ": "\u2423", "\n": "\\n", "\t": "\\t"}
    boundary = "<.>" if "." in tokenizer.stoi else "."
    labels = [boundary] + [shown.get(ch, ch if ch.isprintable() else repr(ch)[1:-1]) for ch in tokenizer.chars]
    return labels + ["\ufffd"] * (tokenizer.vocab_size - len(labels))


def character_embeddings(model):
    """The (V, C) table of a model's character embeddings, or None if it has none (a bigram). A
    classifier's is its body's (the forward one's, when it has two)."""
    return next((m.weight.detach().float().cpu() for name, m in model.named_modules()
                 if isinstance(m, nn.Embedding) and name.rpartition(".")[2] == "wte"), None)


def embedding_map(table, k=2):
    """Where each row of a (V, C) table of embeddings goes on a k-dimensional map, and each axis's share
    of the spread: a table of k columns or fewer as it is (shares None); a wider one's rows scaled to
    unit length and projected on their k principal components."""
    if table.shape[1] <= k:
        return table, None
    directions = table / table.norm(dim=1, keepdim=True).clamp(min=1e-12)
    centered = directions - directions.mean(0)
    u, s, _ = torch.linalg.svd(centered, full_matrices=False)
    return u[:, :k] * s[:k], (s[:k] ** 2 / (s ** 2).sum()).tolist()


def tanh_layers(model):
    """The tanh modules of a model (an MLP's and a WaveNet's hidden layers), each by the name of the layer
    that holds it (hidden.0 for hidden.0.2, the tanh of hidden layer 0)."""
    tanhs = [(name, module) for name, module in model.named_modules() if isinstance(module, nn.Tanh)]
    return {name.rpartition(".")[0] or name: module for name, module in tanhs}


def read_positions(x, y):
    """(B, T): the positions of a batch that a model reads: a language model's, those it predicts from (its
    targets are not IGNORE); a classifier's, its items' characters (its targets are labels, one per row)."""
    return (y != IGNORE) if y.shape == x.shape else (x != BOUNDARY)


@torch.no_grad()
def tanh_outputs(model, x, y):
    """Each tanh layer's outputs at the positions a batch reads (read_positions), as (outputs, units), by
    layer name; a WaveNet layer gives an output per group it merges at each position."""
    read = read_positions(x, y)
    outputs = {}
    hooks = [module.register_forward_hook(lambda _m, _in, out, name=name: outputs.__setitem__(name, out))
             for name, module in tanh_layers(model).items()]
    try:
        model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return {name: out[read].reshape(-1, out.shape[-1]).float().cpu() for name, out in outputs.items()}


def saturation(h, bins=100):
    """Figures of a tanh layer's outputs h (positions, units): mean, standard deviation, the share
    saturated, the units saturated at every position (dead); and what plots.activation_histograms
    draws: each of `bins` equal bins' share of the outputs over -1..1, and each unit's share of
    positions saturated, largest first."""
    saturated = h.abs() > SATURATED
    per_unit = saturated.float().mean(0)
    return {"mean": h.mean().item(), "std": h.std().item(), "saturated": saturated.float().mean().item(),
            "dead": int((per_unit == 1).sum()), "units": h.shape[1],
            "histogram": (torch.histc(h, bins, -1, 1) / h.numel()).tolist(),
            "per_unit": per_unit.sort(descending=True).values.tolist()}


def bigram_table(model):
    """A bigram's (V, V) probabilities of the next character (column) after each character (row)."""
    return model.W.detach().float().cpu().softmax(-1)


def inspect_run(run, model, at, val_batch):
    """Draw a run's figures into its folder and yield the lines that say what they show. model: the
    run's, loaded from the checkpoint that `at` names (e.g. "best.pt, step 3,000"); val_batch(): a
    batch (x, y) of its val split, read only for a model with tanh layers."""
    from makemore.plots import activation_histograms, character_map, next_char_table

    run.adopt_files()
    labels = char_labels(run.tokenizer)
    if run.model_name == "bigram":
        path = next_char_table(bigram_table(model).tolist(), labels, run.path / "bigram.png",
                               f"{run.path.name}: the bigram's next-character probabilities ({at})")
        yield f"bigram: {path} (the {len(labels):,} x {len(labels):,} table of next-character probabilities)"
        return
    table = character_embeddings(model)
    coords, shares = embedding_map(table)
    path = character_map(coords.tolist(), labels, shares, run.path / "embeddings.png",
                         f"{run.path.name}: {run.model_name} character embeddings ({at})")
    drawn = "" if shares is None else (f", drawn by direction on their 2 principal components: {shares[0]:.0%} and "
                                       f"{shares[1]:.0%} of the spread")
    yield f"embeddings: {path} ({table.shape[0]} characters in {table.shape[1]} dimensions{drawn})"
    if not tanh_layers(model):
        yield f"activations: {run.model_name} has no tanh layers to draw (an MLP's and a WaveNet's are drawn)"
        return
    x, y = val_batch()
    figures = {name: saturation(h) for name, h in tanh_outputs(model, x, y).items()}
    positions = int(read_positions(x, y).sum())
    read = f"{len(x):,} val {'sequences' if run.data_config.kind == 'stream' else 'items'}"
    path = activation_histograms(figures, SATURATED, run.path / "activations.png",
                                 f"{run.path.name}: tanh outputs on {read} ({positions:,} positions; {at})")
    layers = f"{len(figures)} tanh layer{'s' if len(figures) > 1 else ''}"
    yield f"activations: {path} ({layers}, on {read}: {positions:,} positions)"
    width = max(len("layer"), *map(len, figures))
    yield f"{'layer':<{width}}   mean    std  saturated  dead units"
    for name, f in figures.items():
        yield (f"{name:<{width}}  {f['mean']:+.2f}  {f['std']:5.2f}  {f['saturated']:9.1%}  "
               f"{f['dead']:,} of {f['units']:,}")
