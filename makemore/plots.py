"""matplotlib figures, written as PNG files (the Agg backend: no display needed)."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def loss_bars(rows, path, title):
    """Grouped bars of train / val / test loss per model, parameters under each name."""
    names = [f"{r['model']}\n{r['parameters']:,} params" for r in rows]
    splits = [s for s in ("train", "val", "test") if all(f"{s}_loss" in r for r in rows)]
    width = 0.8 / len(splits)
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(rows), 4.5))
    for i, split in enumerate(splits):
        xs = [k + (i - (len(splits) - 1) / 2) * width for k in range(len(rows))]
        values = [r[f"{split}_loss"] for r in rows]
        bars = ax.bar(xs, values, width, label=split)
        ax.bar_label(bars, labels=[f"{v:.3f}" for v in values], fontsize=7, rotation=90, padding=2)
    ax.set_xticks(range(len(rows)), names, fontsize=8)
    low = min(r[f"{s}_loss"] for r in rows for s in splits)
    high = max(r[f"{s}_loss"] for r in rows for s in splits)
    ax.set_ylim(low - 0.15, high + 0.12)  # the differences are what matters; the axis does not start at 0
    ax.set_ylabel("loss (nats per character)")
    ax.set_title(title)
    ax.legend(loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
