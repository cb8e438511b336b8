"""makemore as a Python library: the calls a notebook makes, each doing what one command of the CLI does
and returning Python objects (a Run, figures as dicts, rows as lists of dicts, paths of figures).

    import makemore as mm
    data = mm.load_data("names")
    run = mm.train("mlp", data, max_steps=20_000)
    run.sample(10, temperature=0.8)

Errors are MakemoreError, with the one-line message the CLI prints.
"""
import dataclasses
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from makemore import listing
from makemore.baseline import describe as describe_baseline
from makemore.baseline import ngram_baseline
from makemore.compare import compare as compare_models
from makemore.config import DataConfig, TrainConfig, check_name, default_run_name
from makemore.data import load_corpus
from makemore.errors import MakemoreError
from makemore.files import make_dir, write_csv
from makemore.inspection import ACTIVATION_BATCH, inspect_run
from makemore.lrfind import COLUMNS, suggest
from makemore.lrfind import lr_find as range_test
from makemore.models import CUSTOM, FINETUNED, LANGUAGE_MODELS, MODELS
from makemore.predict import classify_items, evaluate_runs, quiet, sample_runs, scored_batches
from makemore.runs import Run as RunFolder
from makemore.runs import run_training
from makemore.search import new_sweep_config
from makemore.sweep import Sweep, run_workers, write_report
from makemore.tokenizer import CharTokenizer
from makemore.transfer import transfer as transfer_experiment


class Data:
    """Text read as makemore reads it: its kind (lines, stream or labeled), its train / val / test splits
    and the characters a model of it predicts. Pass it to train, finetune, sweep, compare or lr_find."""

    def __init__(self, config, corpus):
        self.config = config  # the DataConfig that reads it again: its source and every data option
        self.corpus = corpus

    @property
    def kind(self):
        return self.config.kind

    @property
    def train(self):
        return self.corpus.train

    @property
    def val(self):
        return self.corpus.val

    @property
    def test(self):
        return self.corpus.test

    @property
    def tokenizer(self):
        """The tokenizer a run of this data has: every character of it, and the boundary token (id 0)."""
        return CharTokenizer(self.corpus.chars())

    @property
    def vocab_size(self):
        """How many ids a model of this data predicts: what your own model's output layer needs."""
        return self.tokenizer.vocab_size

    def __repr__(self):
        sizes = ", ".join(f"{name} {len(part):,}" for name, part in self.corpus.splits().items())
        unit = {"lines": "items", "stream": "characters", "labeled": "labeled items"}[self.kind]
        return f"Data({self.config.data!r}, {self.kind}: {unit} {sizes}; vocab_size {self.vocab_size})"


def load_data(source="names", *, log=quiet, **options):
    """Read text as `makemore train --data SOURCE` does: a text file or folder, a URL, hf:<dataset>, a
    table (.csv, .jsonl, .parquet) or a corpus name (names, names-sex, shakespeare, surnames). options
    are the data options of the CLI (kind, encoding, text_column, val_frac, test_frac, split_seed, ...)."""
    check_options(options, DataConfig, what="load_data")
    config = DataConfig(data=str(source), **options)
    corpus = load_corpus(config, log, labeled=None)  # labeled data keeps its labels
    return Data(corpus.config, corpus)


def check_options(options, *configs, what):
    known = {f.name for cls in configs for f in dataclasses.fields(cls)} - {"data", "vocab_size"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise MakemoreError(f"{what} has no option {', '.join(unknown)}; it takes {', '.join(sorted(known))}")


def data_config(data):
    """The DataConfig of a Data or of a source (a path or a corpus name)."""
    return data.config if isinstance(data, Data) else DataConfig(data=str(data))


class Run:
    """A run folder: what training left there (its configs, checkpoints, metrics and TensorBoard events),
    and what a trained model does: sample, evaluate, classify, inspect."""

    def __init__(self, path, model=None):
        self.path = Path(path)
        self._folder = RunFolder.open(self.path)
        self._folder.module = model  # a model of the user's own, which makemore cannot build

    @property
    def name(self):
        return self.path.name

    @property
    def model_name(self):
        """The model family ("mlp", "lstm", ...; "custom" for a model of your own)."""
        return self._folder.model_name

    @property
    def config(self):
        """The run's options: {"model": ..., "data": ..., "train": ...}, as config.json holds them."""
        f = self._folder
        return {"model": dataclasses.asdict(f.model_config), "data": dataclasses.asdict(f.data_config),
                "train": dataclasses.asdict(f.train_config)}

    @property
    def metrics(self):
        """metrics.json: the best checkpoint's figures of every split, and how training went; None until
        training has ended."""
        return listing.read_metrics(self.path / "metrics.json")

    @property
    def tokenizer(self):
        return self._folder.tokenizer

    def load_model(self, checkpoint="best", device="cpu"):
        """The model with the weights of best.pt (or last.pt), in eval mode."""
        return self._folder.load_model(checkpoint, device)[0]

    def sample(self, n=20, *, temperature=1.0, top_k=None, prefix="", seed=None, unique=False, max_len=None,
               checkpoint="best", device="auto"):
        """n samples as strings, as `makemore sample` prints them (prose samples hold newlines)."""
        samples, _, _ = sample_runs([self.path], n, temperature, top_k, prefix, seed, unique, max_len, False,
                                    checkpoint, device, log=quiet, runs=[self._folder])
        return samples

    def evaluate(self, split="test", *, data=None, encoding=None, checkpoint="best", device="auto"):
        """The figures `makemore eval` prints, as a dict: a language model's loss (nats per character),
        bpc and characters; a classifier's loss (nats per item), accuracy, macro_f1, per-label precision,
        recall and f1, and the confusion matrix. data: score all of this file instead of a split."""
        return evaluate_runs([self.path], split, checkpoint, data, encoding, device=device, out=quiet, log=quiet,
                             runs=[self._folder])

    def classify(self, items, *, top_k=3, checkpoint="best", device="auto"):
        """A classifier's top_k likeliest labels of each item: [(item, [(label, probability), ...]), ...]."""
        if isinstance(items, str):  # a string is a sequence of characters: each would be classified alone
            raise MakemoreError(f"classify takes a list of items, not one string: pass [{items[:40]!r}]")
        return classify_items([self.path], list(items), top_k, False, checkpoint, device, log=quiet,
                              runs=[self._folder])

    def inspect(self, checkpoint="best"):
        """Draw the lectures' figures of the model into the run's folder (embeddings.png, activations.png,
        or a bigram's bigram.png) and return their paths; `makemore inspect` prints what they show."""
        run = self._folder
        model, ckpt = run.load_model(checkpoint)

        def val_batch():
            batches, _ = scored_batches(run, model, "cpu", "val")
            return next(batches.iter_all(ACTIVATION_BATCH))

        start = time.time()
        list(inspect_run(run, model, f"{checkpoint}.pt, step {ckpt['step']:,}", val_batch))
        names = ("bigram.png", "embeddings.png", "activations.png")
        return [self.path / n for n in names if (self.path / n).exists() and (self.path / n).stat().st_mtime >= start]

    def history(self):
        """The scalars training logged for TensorBoard: {tag: [(step, value), ...]}; the loss curves are
        "loss/train" and "loss/val" (a classifier's, in nats per item, "loss_per_item/train" and
        "loss_per_item/val", with "accuracy/..." and "macro_f1/...")."""
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # slow to import

        events = EventAccumulator(str(self.path), size_guidance={"scalars": 0})
        events.Reload()
        return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}

    def resume(self, *, progress=True, log=tqdm.write, **options):
        """Train on from last.pt (after an interruption, or with a larger max_steps); returns this run."""
        check_options(options, TrainConfig, what="resume")
        module = self._folder.module
        run_training(self.path, resume=True, train_overrides=options, log=log, module=module, progress=progress)
        self._folder = RunFolder.open(self.path)  # its training options may have changed
        self._folder.module = module
        return self

    def __repr__(self):
        metrics = self.metrics
        state = "unfinished" if metrics is None else ", ".join(
            f"{k.removesuffix('_loss')} {v:.4f}" for k, v in metrics.items() if k.endswith("_loss"))
        return f"Run({str(self.path)!r}, {self.model_name}: {state})"


def open_run(path, model=None):
    """Any run folder, made by `makemore train` or by train here. A run of a model of your own needs the
    model again: open_run(path, model=MyModel(...)), built as it was trained (its weights are loaded)."""
    return Run(path, model)


def train(model="mlp", data="names", *, out_dir="runs", name=None, progress=True, log=tqdm.write, **options):
    """Train a model as `makemore train` does and return its Run: checkpoints, TensorBoard events,
    metrics.json and samples.txt in out_dir/name.

    model: a model name (see MODELS) or a model of your own: an nn.Module whose forward(idx, targets=None)
    returns (logits, loss), logits (B, T, vocab_size) where position t predicts token t + 1, and a loss
    that skips targets of -1 (F.cross_entropy(..., ignore_index=-1)). data: a Data (load_data) or a
    source. options: the model's options and the training options of the CLI (max_steps, lr, ...).
    progress: a progress bar (a widget in a notebook)."""
    if not isinstance(model, (str, torch.nn.Module)):
        raise MakemoreError(f"model must be a model's name ({', '.join(MODELS)}) or an nn.Module of your own, got "
                            f"{type(model).__name__} {repr(model)[:60]}")
    config = data_config(data)
    own = isinstance(model, torch.nn.Module)
    if own:
        check_options(options, TrainConfig, what="train with a model of your own")
        model_name, model_options = CUSTOM, {}
    else:
        if model not in MODELS:
            raise MakemoreError(f"unknown model '{model}'; pass one of: {', '.join(MODELS)}, or a model of your own")
        model_name = model
        configs = [MODELS[model].config]
        if hasattr(configs[0], "from_options"):  # a classifier: the options it does not have configure its body
            configs.append(MODELS[options.get("encoder", "lstm")].config)
        check_options(options, *configs, TrainConfig, what=f"train {model}")
        training = {f.name for f in dataclasses.fields(TrainConfig)}
        model_options = {k: v for k, v in options.items() if k not in training}
    train_options = {k: v for k, v in options.items() if k not in model_options}
    label = type(model).__name__.lower() if own else model
    path = Path(out_dir) / (check_name(name) if name else default_run_name(Path(out_dir), label, config.data))
    run_training(path, model_name, model_options, config, train_options, log=log, module=model if own else None,
                 progress=progress)
    return Run(path, model if own else None)


def finetune(lm_run, data="surnames", *, backward=None, out_dir="runs", name=None, progress=True, log=tqdm.write,
             leak_check="refuse", **options):
    """A classifier that starts from a language model's body, as `makemore finetune --from` trains it.
    lm_run: a Run or a run folder; backward: a run that reads right to left (a second body); leak_check:
    "refuse" a language model whose pretraining text holds val or test items, or "warn" and go on. A language
    model of your own (a Run opened with its model) needs body(idx) -> features (B, T, H) and
    head(features) -> logits; the classifier's run is then opened with that model again."""
    check_options(options, MODELS[FINETUNED].config, TrainConfig, what="finetune")
    config = data_config(data)
    own = {f.name for f in dataclasses.fields(MODELS[FINETUNED].config)}
    path = Path(out_dir) / (check_name(name) if name else default_run_name(Path(out_dir), FINETUNED, config.data))
    body = lm_run._folder.module if isinstance(lm_run, Run) else None  # a language model of the user's own
    run_training(path, FINETUNED, {k: v for k, v in options.items() if k in own}, config,
                 {k: v for k, v in options.items() if k not in own}, log=log, pretrained=run_path(lm_run),
                 backward=run_path(backward), progress=progress, module=body, leak_check=leak_check)
    return Run(path, body)


def run_path(run):
    return run.path if isinstance(run, Run) else None if run is None else Path(run)


class Study:
    """A finished (or interrupted) sweep: its results, one dict per trial, and the figures it drew."""

    def __init__(self, path, rows):
        self.path = Path(path)
        self.results = rows
        self.figures = sorted(self.path.glob("*.png"))

    @property
    def best(self):
        """The best complete trial's row (None if no trial completed)."""
        done = [r for r in self.results if r["state"] == "complete"]
        key = next((k for k in ("val_error", "val_loss") if done and k in done[0]), None)
        return min(done, key=lambda r: r[key]) if done else None

    def __repr__(self):
        return f"Study({str(self.path)!r}, {len(self.results)} trials)"


def sweep(model="mlp", data="names", *, params, trials=24, parallel=1, out_dir="runs/sweeps", name=None,
          sampler="tpe", pruner="median", sampler_seed=0, storage=None, from_run=None, backward=None, log=print,
          **fixed):
    """Search hyperparameters as `makemore sweep` does: params maps a setting to its values ("log:1e-4:1e-2",
    "3..8", "64,128,256", ...); fixed holds settings every trial shares (max_steps, ...). Returns a Study."""
    config = data_config(data)
    data_options = {k: v for k, v in dataclasses.asdict(config).items() if k != "data" and v != getattr(
        DataConfig(), k)}
    given = {"trials": trials, "parallel": parallel, "sampler": sampler, "pruner": pruner,
             "sampler_seed": sampler_seed, **({"storage": storage} if storage else {}), **data_options, **fixed}
    specs = [f"{k}={','.join(map(str, v)) if isinstance(v, (list, tuple)) else v}" for k, v in params.items()]
    cfg = new_sweep_config(name, model if from_run is None else FINETUNED, config.data, run_path(from_run),
                           run_path(backward), specs, None, Path(out_dir), given)
    found = Sweep.create(cfg, Path(out_dir))
    run_workers(found, parallel, log=log)
    return Study(found.dir, write_report(found, log=log))


def compare(models=tuple(LANGUAGE_MODELS), data="names", *, max_steps=None, out_dir="runs/compare", device="auto",
            log=print):
    """Train each model with its defaults on one split and seed, as `makemore compare` does; returns the
    table's rows (dicts) and writes compare.csv, compare.md and compare.png in out_dir."""
    overrides = {"device": device, **({"max_steps": max_steps} if max_steps is not None else {})}
    _, rows = compare_models(list(models), Path(out_dir), data_config(data), overrides, log)
    return rows


def lr_find(model="mlp", data="names", *, start=1e-5, end=1.0, steps=250, out_dir="runs/lr-find", name=None,
            from_run=None, backward=None, log=tqdm.write, **options):
    """The learning-rate range test of `makemore lr-find`: returns (the suggested rate or None, the curve's
    rows) and writes NAME.csv and NAME.png in out_dir."""
    from makemore.plots import lr_curve  # matplotlib is slow to import

    model = FINETUNED if from_run is not None else model
    check_options(options, MODELS[model].config, TrainConfig, what="lr_find")
    config = data_config(data)
    model_fields = {f.name for f in dataclasses.fields(MODELS[model].config)}
    stem = check_name(name, "lr-find") if name else default_run_name(Path(out_dir), model, config.data, suffix=".png")
    reason, rows = range_test(Path(out_dir) / stem, model, {k: v for k, v in options.items() if k in model_fields},
                              config, {k: v for k, v in options.items() if k not in model_fields}, start, end, steps,
                              log=log, pretrained=run_path(from_run), backward=run_path(backward))
    lowest, suggested, _ = suggest(rows, reason)
    make_dir(Path(out_dir))
    write_csv(Path(out_dir) / f"{stem}.csv", COLUMNS, rows)
    lr_curve(rows, lowest, suggested, Path(out_dir) / f"{stem}.png", f"lr-find: {model}, {len(rows)} steps")
    return suggested, rows


def transfer(data="surnames", encoder="lstm", *, fractions=(0.01, 0.05, 0.2, 1), seeds=3, pretrain_steps=None,
             pretrain_data=None, leak_check="refuse", out_dir="runs/transfer", log=print, **options):
    """The transfer experiment of `makemore transfer`: scratch against pretrained classifiers and the n-gram
    baseline, by number of labels; returns the rows (dicts) and writes transfer.csv, transfer.md and
    transfer.png in out_dir. pretrain_data: the unlabeled text (a Data or a source) the language model
    learns from, by default the labeled data's train items."""
    classifier = {f.name for f in dataclasses.fields(MODELS[FINETUNED].config)}
    training = {f.name for f in dataclasses.fields(TrainConfig)}
    pretrain = {k: v for k, v in options.items() if k in ("device", "precision")}
    if pretrain_steps:
        pretrain["max_steps"] = pretrain_steps
    shares = sorted({float(f) for f in fractions})  # as the CLI reads --fractions
    _, rows = transfer_experiment(data_config(data), encoder, shares, list(range(1, seeds + 1)),
                                  Path(out_dir), {k: v for k, v in options.items() if k not in classifier | training},
                                  {k: v for k, v in options.items() if k in classifier},
                                  {k: v for k, v in options.items() if k in training}, pretrain, log,
                                  pretrain_data=None if pretrain_data is None else data_config(pretrain_data),
                                  leak_check=leak_check)
    return rows


def baseline(data="glosses", *, c=3.0, ngrams=(1, 4), log=quiet, **options):
    """The character n-gram baseline of `makemore baseline`: TF-IDF of character n-grams and a logistic
    regression, fitted on the train split of labeled data (a Data or a source, read with options as
    load_data reads it) and scored on its val and test splits, the split a classifier of the same data and
    options trains on. Returns {"model", "train_items", "val_accuracy", "val_macro_f1", "val_loss", "test_...",
    "seconds"}. Needs scikit-learn (pip install 'makemore[baseline]')."""
    check_options(options, DataConfig, what="baseline")
    config = data_config(data)
    config = DataConfig(**{**dataclasses.asdict(config), **options, "kind": "labeled"})
    corpus = load_corpus(config, log, labeled=True)
    return {"model": describe_baseline(ngrams, c), **ngram_baseline(corpus, ngrams, c)}


def list_runs(folder="runs"):
    """The rows of `makemore runs`: one dict per run in folder (run, model, data, parameters, steps, val,
    test, time, state)."""
    paths, _ = listing.find_runs(folder)
    root = Path(folder).parent if paths == [Path(folder)] else Path(folder)
    states = listing.sweep_states(root)
    return [listing.run_row(p, root, states.get(p.name))[0] for p in paths]


def plot_loss(*runs, ax=None, val_only=False):
    """Draw the runs' train (thin) and val (thick) loss curves on one matplotlib Axes and return it."""
    import matplotlib.pyplot as plt  # slow to import; only plots need it

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    units = set()
    for run in runs:
        history = run.history()
        tag = next((t for t in ("loss", "loss_per_item") if f"{t}/train" in history), "loss")
        units.add("nats per item" if tag == "loss_per_item" else "nats per character")
        line = None
        if not val_only and history.get(f"{tag}/train"):
            steps, values = zip(*history[f"{tag}/train"])
            (line,) = ax.plot(steps, values, lw=0.8, alpha=0.6)
        if history.get(f"{tag}/val"):
            steps, values = zip(*history[f"{tag}/val"])
            ax.plot(steps, values, lw=2, marker=".", color=None if line is None else line.get_color(),
                    label=f"{run.name} (val)")
    ax.set_xlabel("step")
    ax.set_ylabel(f"loss ({' / '.join(sorted(units))})")
    ax.legend()
    return ax

