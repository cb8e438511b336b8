"""matplotlib figures, written as PNG files. They are matplotlib Figure objects of their own, never pyplot's: a
notebook's backend and its open figures are left as they were (pyplot would show each figure drawn here in a
notebook, and switching to the Agg backend hides the user's own plots), and no display is needed."""
import itertools
import math
import warnings
from pathlib import Path

import matplotlib.ticker
from matplotlib.figure import Figure

from makemore.files import write_file


def subplots(nrows=1, ncols=1, figsize=None, **options):
    """(figure, axes) as pyplot.subplots makes them, but a Figure of its own (see the module's docstring)."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **options)


def loss_bars(rows, path, title):
    """Grouped bars of train / val / test loss per model, its parameters and training steps under each name.
    The axis starts at 0: a short comparison's differences are not stretched into a ranking."""
    names = [f"{r['model']}\n{r['parameters']:,} params\n{r['steps']:,} steps" for r in rows]
    splits = [s for s in ("train", "val", "test") if all(f"{s}_loss" in r for r in rows)]
    width = 0.8 / len(splits)
    fig, ax = subplots(figsize=(1.8 + 1.6 * len(rows), 4.5))
    for i, split in enumerate(splits):
        xs = [k + (i - (len(splits) - 1) / 2) * width for k in range(len(rows))]
        values = [r[f"{split}_loss"] for r in rows]
        bars = ax.bar(xs, values, width, label=split)
        ax.bar_label(bars, labels=[f"{v:.3f}" for v in values], fontsize=7, rotation=90, padding=2)
    ax.set_xticks(range(len(rows)), names, fontsize=8)
    high = max(r[f"{s}_loss"] for r in rows for s in splits)
    ax.set_ylim(0, high * 1.15)  # room for the labels above the bars
    ax.set_ylabel("loss (nats per character)")
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))  # beside the axes: never over a bar
    ax.grid(axis="y", alpha=0.3)
    _save(fig, path, dpi=120)


# ----------------------------------------------------------------------------------------------
# sweeps

STATE_STYLE = {"complete": {"color": "tab:blue", "marker": "o"}, "pruned": {"color": "tab:gray", "marker": "x"}}


def loss_limits(values):
    """y limits that show the good trials: the worst tenth (diverged runs) may fall off the top, so a
    sweep of fewer than ten trials shows them all."""
    values = sorted(values)
    low, high = values[0], values[len(values) - 1 - len(values) // 10]
    pad = max(0.02, 0.1 * (high - low))
    return low - pad, max(high, low) + 2 * pad


def range_limits(low, high, scale):
    """Axis limits that show a searched range with a small margin on either side."""
    if scale == "log":
        margin = (high / low) ** 0.04
        return low / margin, high * margin
    margin = 0.04 * (high - low)
    return low - margin, high + margin


def numeric_axis(values):
    """How to place a parameter's values on an axis: 'log', 'linear' or 'category'."""
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "category"
    positive = all(v > 0 for v in values)
    return "log" if positive and max(values) / min(values) >= 16 else "linear"


def _place(param, values):
    """x positions for a parameter's values, and how to label the axis."""
    scale = "log" if param.log else numeric_axis(values) if param.choices is not None else "linear"
    if scale != "category":
        return list(values), scale, None
    labels = [str(c) for c in param.choices]
    return [labels.index(str(v)) for v in values], "linear", labels


def sweep_plots(rows, space, importance, out_dir, title, objective=("val_loss", "val loss (nats/char)")):
    """The sweep's objective against each hyperparameter, the validation curves, best so far, and a
    heat map. objective: the rows' column that holds it and what it is, e.g. ("val_error", "val error
    rate (1 - accuracy)") for a classifier."""
    key, measure = objective
    scored = [r for r in rows if r[key] is not None and math.isfinite(r[key])]
    if not scored:
        return []
    ylim = loss_limits([r[key] for r in scored])
    written = []

    # 1. the objective against each hyperparameter
    cols = min(3, len(space))
    nrows = math.ceil(len(space) / cols)
    fig, axes = subplots(nrows, cols, figsize=(4.2 * cols, 3.4 * nrows), squeeze=False)
    for ax, param in zip(axes.flat, space):
        for state, style in STATE_STYLE.items():
            pts = [r for r in scored if r["state"] == state]
            if pts:
                xs, scale, labels = _place(param, [r[param.name] for r in pts])
                ax.scatter(xs, [r[key] for r in pts], label=state, alpha=0.8, **style)
        _, scale, labels = _place(param, [r[param.name] for r in scored])
        ax.set_xscale(scale)
        if param.low is not None:  # a range: show all of it, so one sees where the trials fell in it
            ax.set_xlim(*range_limits(param.low, param.high, scale))
        if scale == "log" and math.log10(ax.get_xlim()[1] / ax.get_xlim()[0]) >= 1:
            # decades are labelled; minor labels would overlap
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        if labels:
            ax.set_xticks(range(len(labels)), labels)
        elif param.choices is not None:
            ax.set_xticks(param.choices, [str(c) for c in param.choices])
            ax.minorticks_off()
        ax.set_xlabel(param.name + (" (log scale)" if scale == "log" else ""))
        ax.set_ylim(*ylim)
        ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel(measure)
    for ax in list(axes.flat)[len(space):]:
        ax.remove()
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(f"{title}\n{measure} against each hyperparameter", fontsize=10)  # two lines: one panel is narrow
    written.append(_save(fig, out_dir / "loss_vs_params.png"))

    # 2. validation curves of every trial
    best = min(scored, key=lambda r: r[key])
    fig, ax = subplots(figsize=(7, 4.5))
    for r in rows:
        if not r["curve"]:
            continue
        steps, losses = zip(*sorted(r["curve"].items()))
        is_best = r is best
        ax.plot(steps, losses, "-" if r["state"] == "complete" else "--", marker=".", lw=2.2 if is_best else 0.9,
                color="tab:red" if is_best else STATE_STYLE.get(r["state"], {}).get("color", "tab:orange"),
                alpha=1 if is_best else 0.45, label=f"best: trial {r['trial']}" if is_best else None,
                zorder=3 if is_best else 2)
    written.append(_save_loss_axes(fig, ax, ylim, measure, "step", title + "\nvalidation curves (dashed: pruned)",
                                   out_dir / "curves.png"))

    # 3. best so far against trial number
    fig, ax = subplots(figsize=(7, 4))
    ordered = sorted(scored, key=lambda r: r["trial"])
    for state, style in STATE_STYLE.items():
        pts = [r for r in ordered if r["state"] == state]
        if pts:
            ax.scatter([r["trial"] for r in pts], [r[key] for r in pts], label=state, alpha=0.7, **style)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))  # trials are numbered
    complete = [r for r in ordered if r["state"] == "complete"]
    if complete:
        trials = [r["trial"] for r in complete] + [ordered[-1]["trial"]]  # on to the last trial, pruned or not
        running = [min(r[key] for r in complete[: k + 1]) for k in range(len(complete))]
        ax.step(trials, running + running[-1:], where="post", color="tab:red", label="best so far")
    written.append(_save_loss_axes(fig, ax, ylim, measure, "trial", title + "\nbest so far",
                                   out_dir / "best_so_far.png"))

    # 4. heat map of the two most important parameters: the best value in each cell
    if len(space) >= 2:
        by_name = {p.name: p for p in space}
        names = [n for n in importance if n in by_name][:2] if len(importance) >= 2 else [p.name for p in space[:2]]
        px, py = by_name[names[0]], by_name[names[1]]
        xbins, xlabels = _bins(px, [r[px.name] for r in scored])
        ybins, ylabels = _bins(py, [r[py.name] for r in scored])
        grid = [[math.nan] * len(xlabels) for _ in ylabels]
        count = [[0] * len(xlabels) for _ in ylabels]
        state = [[""] * len(xlabels) for _ in ylabels]  # of the cell's best trial
        for r in scored:
            i, j = ybins(r[py.name]), xbins(r[px.name])
            count[i][j] += 1
            if math.isnan(grid[i][j]) or r[key] < grid[i][j]:
                grid[i][j], state[i][j] = r[key], r["state"]
        fig, ax = subplots(figsize=(1.6 + 1.1 * len(xlabels), 1.4 + 0.6 * len(ylabels)))
        image = ax.imshow(grid, cmap="viridis_r", vmin=ylim[0], vmax=ylim[1], aspect="auto", origin="lower")
        for i in range(len(ylabels)):
            for j in range(len(xlabels)):
                if count[i][j]:
                    light = (grid[i][j] - ylim[0]) / (ylim[1] - ylim[0]) < 0.5  # viridis_r is pale at low losses
                    note = ", pruned" if state[i][j] == "pruned" else ""  # its loss when stopped, not at the end
                    ax.text(j, i, f"{grid[i][j]:.3f}\n(n={count[i][j]}{note})", ha="center", va="center", fontsize=7,
                            color="black" if light else "white")
        ax.set_xticks(range(len(xlabels)), xlabels, fontsize=7, rotation=30)
        ax.set_yticks(range(len(ylabels)), ylabels, fontsize=7)
        ax.set_xlabel(px.name)
        ax.set_ylabel(py.name)
        fig.colorbar(image, ax=ax, label=f"best {measure} in cell")
        why = "the two most important parameters" if len(importance) >= 2 else "the first two parameters"
        ax.set_title(f"{title}\n{why}", fontsize=9)
        written.append(_save(fig, out_dir / "heatmap.png"))
    return written


def _bins(param, values, n=6):
    """A function value -> bin index, and the bins' labels: one bin per value when there are few."""
    distinct = sorted(set(values), key=lambda v: (str(type(v)), v))
    if param.choices is not None or len(distinct) <= n:
        labels = [str(c) for c in (param.choices if param.choices is not None else distinct)]
        return (lambda v: labels.index(str(v))), labels
    low, high = param.low, param.high
    if param.log:
        edges = [math.exp(math.log(low) + k * (math.log(high) - math.log(low)) / n) for k in range(n + 1)]
    else:
        edges = [low + k * (high - low) / n for k in range(n + 1)]
    labels = [f"{a:.2g}-{b:.2g}" for a, b in itertools.pairwise(edges)]
    return (lambda v: min(n - 1, max(0, sum(v >= e for e in edges[1:-1])))), labels


def _save_loss_axes(fig, ax, ylim, measure, xlabel, title, path):
    """Label a plot of the sweep's objective against xlabel and save it."""
    ax.set_ylim(*ylim)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(measure)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _save(fig, path, dpi=110, rect=None):
    """Lay out a figure (within rect, a share of the figure: (left, bottom, right, top)), write it to path
    and close it; a file that cannot be written is a one-line error."""
    try:
        with warnings.catch_warnings():
            # a character the font lacks (CJK, in DejaVu Sans) is drawn as a box; matplotlib would also warn
            # once per such character, thousands of lines for a large vocabulary
            warnings.filterwarnings("ignore", message="Glyph .* missing from font")
            fig.tight_layout(rect=rect)
            write_file(path, lambda f: fig.savefig(f, dpi=dpi, format=Path(path).suffix.lstrip(".") or "png"))
    finally:
        fig.clear()
    return path


# ----------------------------------------------------------------------------------------------
# classifiers


def confusion_matrix(confusion, labels, path, title):
    """Rows: true label, columns: predicted; colour is the share of the row (recall on the diagonal),
    the numbers are counts."""
    n = len(labels)
    counts = [[int(c) for c in row] for row in confusion]
    shares = [[c / max(1, sum(row)) for c in row] for row in counts]
    size = 2.5 + 0.42 * n
    fig, ax = subplots(figsize=(size + 1.2, size))
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            if counts[i][j]:
                ax.text(j, i, str(counts[i][j]), ha="center", va="center", fontsize=7,
                        color="white" if shares[i][j] > 0.5 else "black")
    ax.set_xticks(range(n), labels, rotation=90, fontsize=8)
    ax.set_yticks(range(n), [f"{label} ({sum(row)})" for label, row in zip(labels, counts)], fontsize=8)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label (items)")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true label's items")
    _save(fig, path, dpi=120)


def transfer_curves(summary, path, title, majority=None):
    """Test accuracy and macro-F1 against the number of training labels: mean and min-max over seeds,
    one curve per initialisation. summary: {init: [(n_labels, {metric: [values over seeds]}), ...]};
    majority: (label, test accuracy of always answering it), drawn as a reference line."""
    fig, axes = subplots(1, 2, figsize=(11, 4.5))
    for ax, metric, name in zip(axes, ("test_accuracy", "test_macro_f1"), ("test accuracy", "test macro-F1")):
        means = {init: [sum(v[metric]) / len(v[metric]) for _, v in points] for init, points in summary.items()}
        for init, points in summary.items():
            xs = [n for n, _ in points]
            values = [v[metric] for _, v in points]
            n = len(values[0])
            line, = ax.plot(xs, means[init], marker="o", label=f"{init} (mean of {n} seed{'s' if n > 1 else ''})")
            ax.fill_between(xs, [min(v) for v in values], [max(v) for v in values], color=line.get_color(), alpha=0.2)
            for i, (x, m) in enumerate(zip(xs, means[init])):  # the higher curve's label above its point, others below
                above = m >= max(other[i] for other in means.values())
                ax.annotate(f"{m:.3f}", (x, m), textcoords="offset points", xytext=(0, 7 if above else -12),
                            ha="center", fontsize=7, color=line.get_color())
        if majority and metric == "test_accuracy":
            ax.axhline(majority[1], color="gray", linestyle="--", linewidth=1,
                       label=f"always {majority[0]} ({majority[1]:.3f})")
        ax.margins(y=0.12)  # room inside the axes for the labels above and below the points
        ax.set_xscale("log")
        ax.set_xticks(xs, [f"{x:,}" for x in xs])
        ax.minorticks_off()
        ax.set_xlabel("labeled training items (log scale)")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower "
                                    "center", ncol=len(labels), fontsize=8)  # below both panels: never over a curve
    fig.suptitle(title)
    _save(fig, path, dpi=120, rect=(0, 0.06, 1, 1))


# ----------------------------------------------------------------------------------------------
# lr-find


def lr_curve(rows, lowest, suggested, path, title):
    """The range test: each step's training loss (faint) and its moving average against the learning rate
    (log scale), the average's lowest point and the suggested rate (if any) marked."""
    lrs = [r["lr"] for r in rows]
    fig, ax = subplots(figsize=(7, 4.5))
    ax.plot(lrs, [r["loss"] for r in rows], color="tab:blue", alpha=0.25, linewidth=0.8, label="loss of each step")
    ax.plot(lrs, [r["smoothed"] for r in rows], color="tab:blue", label="moving average")
    ax.plot([lowest["lr"]], [lowest["smoothed"]], "o", color="tab:red",
            label=f"lowest: {lowest['smoothed']:.3f} at lr {lowest['lr']:.2g}")
    if suggested is not None:
        ax.axvline(suggested, color="tab:green", linestyle="--", label=f"suggested --lr {suggested:.2g}")
    start, low = rows[0]["smoothed"], lowest["smoothed"]  # lowest: of the finite values (a diverged tail may be inf)
    ax.set_ylim(low - 0.1 * (start - low) - 0.02, start + 0.3 * (start - low) + 0.02)  # the diverged tail may be off
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return _save(fig, path)


# ----------------------------------------------------------------------------------------------
# inspect


def character_map(coords, labels, shares, path, title):
    """Each character at its embedding's point on a map (coords: (V, 2) or (V, 1)), as in the lectures'
    part 2; shares: each axis's share of the spread, when the axes are principal components of the
    embeddings' directions (inspection.embedding_map), else None."""
    xs = [float(c[0]) for c in coords]
    ys = [float(c[1]) if len(c) > 1 else 0.0 for c in coords]
    fig, ax = subplots(figsize=(7.5, 7))
    ax.scatter(xs, ys, s=170, color="tab:blue", alpha=0.8)
    for x, y, label in zip(xs, ys, labels):
        ax.text(x, y, label, ha="center", va="center", color="white", fontsize=8)
    for axis, set_label in enumerate((ax.set_xlabel, ax.set_ylabel)):
        if shares is None:
            set_label(f"embedding dimension {axis + 1}")
        else:
            set_label(f"principal component {axis + 1} of the directions ({shares[axis]:.0%} of the spread)")
    ax.set_aspect("equal", adjustable="datalim")  # distances between characters are what the map shows
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def activation_histograms(figures, threshold, path, title):
    """Each tanh layer's outputs as a histogram over -1..1, and each unit's share of positions saturated
    (|t| > threshold), units sorted (a dead unit is saturated at all of them); figures: {layer:
    inspection.saturation(...)}."""
    fig, (left, right) = subplots(1, 2, figsize=(12, 4.5))
    for name, f in figures.items():
        bins = len(f["histogram"])
        left.plot([-1 + (2 * k + 1) / bins for k in range(bins)], f["histogram"],
                  label=f"{name}: mean {f['mean']:+.2f}, std {f['std']:.2f}, saturated {f['saturated']:.1%}")
        units = f["per_unit"]
        right.plot([k / max(1, len(units) - 1) for k in range(len(units))], units,
                   label=f"{name}: {f['dead']} of {f['units']} units dead")
    for edge in (-1, threshold):
        left.axvspan(edge, edge + 1 - threshold, color="tab:red", alpha=0.15, linewidth=0)
    left.set_xlabel("tanh output")
    left.set_ylabel("share of outputs")
    left.set_title(f"outputs (|t| > {threshold}: saturated, almost no gradient)", fontsize=9)
    right.set_xlabel("units, sorted by their share saturated (0 to 1 of the layer)")
    right.set_ylabel("share of positions where the unit is saturated")
    right.set_ylim(-0.03, 1.03)
    right.set_title("a unit saturated at every position is dead", fontsize=9)
    for ax in (left, right):
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def next_char_table(probs, labels, path, title):
    """A bigram's table, as in the lectures' part 1: row = a character, column = the next one, colour
    its probability; with few characters each cell also gives it in percent, and with many the axes
    count ids rather than name characters. labels[0]: the boundary's."""
    n = len(labels)
    size = 2.5 + 0.32 * min(n, 40)  # no larger: a vocabulary of thousands would make a figure of gigapixels
    fig, ax = subplots(figsize=(size + 1.2, size))
    image = ax.imshow(probs, cmap="Blues", vmin=0, interpolation="nearest")
    if n <= 32:
        top = max(map(max, probs))
        for i in range(n):
            for j in range(n):
                p = probs[i][j]
                if p >= 0.005:
                    ax.text(j, i, f"{100 * p:.0f}", ha="center", va="center", fontsize=6,
                            color="white" if p > 0.5 * top else "black")
    if n <= 64:  # beyond that the characters' names overlap: the axes count ids
        ax.set_xticks(range(n), labels, fontsize=7)
        ax.set_yticks(range(n), labels, fontsize=7)
        ax.set_xlabel(f"next character ('{labels[0]}': the item ends)")
        ax.set_ylabel(f"character ('{labels[0]}': the item starts)")
    else:
        ax.set_xlabel(f"next character, by id (0: the item ends; {n:,} in all)")
        ax.set_ylabel("character, by id (0: the item starts)")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="probability of the next character")
    return _save(fig, path)
