"""What finished runs do: sample text, score a split or a file, label items. Several runs act as one,
their probabilities averaged (equally, or with the mixture weights that score their val split best).

These are the library calls behind `makemore sample`, `eval` and `classify`: each returns what the
command prints, and says what it noticed on the way through `log`.
"""
import csv
import io
from dataclasses import replace
from pathlib import Path

from makemore.data import load_whole, make_batches
from makemore.device import pick_device
from makemore.errors import MakemoreError
from makemore.evaluate import average, evaluate, item_log_probs, mixture_weights, top_labels
from makemore.files import check_writable, write_text
from makemore.runs import holds_run, open_runs
from makemore.sampling import Mixture, generate

MAX_REDRAWS = 50  # sample --unique draws at most this many batches of samples


def quiet(_):
    pass


def scored_batches(run, model, device, part, data=None, encoding=None):
    """The batches of a split of a run's data (part: its name), or of all of the file data (part "data"),
    read with encoding or the run's own; and the split's items."""
    if part != "data":
        try:
            corpus, source = run.load_corpus(log=quiet), None
        except MakemoreError as e:  # its "pass --data" would score a file, not the split
            raise MakemoreError(f"cannot read the {part} split of {run.path} here ({e.problem}); put the data back "
                                "where the run read it, as it was") from None
    else:
        cfg = replace(run.data_config, data=data, encoding=encoding or run.data_config.encoding)
        labels = getattr(run.model_config, "labels", None) if run.task.labeled else None
        corpus, source, part = load_whole(cfg, labels), f"data {data}", "test"
    batches = make_batches(corpus, run.tokenizer, device, run.data_config.seq_len, getattr(model, "context_size", None),
                           getattr(model, "max_input", None), source, run.data_config.reverse,
                           run.data_config.max_item_len)
    if part not in batches:
        raise MakemoreError(f"the {part} split of this run is empty; pick another --split")
    return batches[part], corpus.splits()[part]


def members_of(runs, models, device, part, data=None, encoding=None, show=None):
    """Each run's log-probabilities of a split (or of data; see scored_batches), as its task reads them
    (every target character, or every label of every item), and the targets and items, alike for all
    runs. models: each run's (model, checkpoint); show(run, checkpoint, logp, targets), if given, is
    called for each run as it is scored."""
    members, targets, items = [], None, None
    for run, (model, ckpt) in zip(runs, models):
        batches, mine_items = scored_batches(run, model, device, part, data, encoding)
        logp, mine = run.task.log_probs(model, batches, run.train_config, progress=f"{run.path} {part}")
        if targets is not None and not run.task.same_targets(mine, targets, mine_items, items):
            raise MakemoreError(f"{run.path} and {runs[0].path} split their data differently (their {part} splits "
                                "differ); average runs trained on the same data with the same --split-seed, "
                                "--val-frac and --test-frac")
        members.append(logp)
        targets, items = mine, mine_items
        if show is not None:
            show(run, ckpt, logp, targets)
    return members, targets, items


def check_fit_weights(fit_weights, runs):
    if fit_weights and len(runs) == 1:
        raise MakemoreError("--fit-weights weighs several runs against each other; pass two --run or more, or drop it")


def fitted_weights(runs, models, device, log):
    """--fit-weights: the mixture weights of several runs that score their val split best (EM), said through log."""
    val, targets, _ = members_of(runs, models, device, "val")
    weights = mixture_weights([runs[0].task.events(logp, targets) for logp in val])
    log("weights fitted on the val split: " + ", ".join(f"{run.path} {w:.3f}" for run, w in zip(runs, weights)))
    return weights


def loaded(runs, fit_weights, checkpoint, device, log):
    """Each run's (model, checkpoint) on the device (picked from its name), the device, and the runs'
    weights (None: equal)."""
    device = pick_device(device)
    models = [run.load_model(checkpoint, device) for run in runs]
    return models, device, fitted_weights(runs, models, device, log) if fit_weights else None


def sample_runs(run_dirs, n=20, temperature=1.0, top_k=None, prefix="", seed=None, unique=False, max_len=None,
                fit_weights=False, checkpoint="best", device="auto", log=print, runs=None, each=None):
    """n samples of a run (or of several as one, from the mean of their probabilities): (the samples,
    whether they are prose rather than items, notes that say how many are new). unique: only samples
    that are not training items. log hears the mixture weights that --fit-weights fits. runs: the runs of
    run_dirs, opened already (a run of a model of the user's own carries it). each(samples, prose) hears each
    batch of samples as it is drawn, unless unique (which draws again until it has n new ones)."""
    runs = runs or open_runs(run_dirs)
    run = runs[0]
    run.task.require("sample", run)
    check_fit_weights(fit_weights, runs)
    kind = {"labeled": "lines"}.get(run.data_config.kind, run.data_config.kind)  # an LM of labeled items makes items
    if unique and kind != "lines":
        raise MakemoreError(f"--unique is for line corpora, where a sample can repeat a training item; {run.path} was "
                            f"trained on {kind} text: drop --unique")
    if unique and temperature == 0:
        raise MakemoreError("--unique draws again until samples are new, and at --temperature 0 every draw is the "
                            "same: pass a --temperature above 0, or drop --unique")
    models, device, weights = loaded(runs, fit_weights, checkpoint, device, log)
    model = models[0][0] if len(runs) == 1 else Mixture([m for m, _ in models], weights)
    options = {"prefix": prefix, "max_len": max_len, "temperature": temperature, "top_k": top_k,
               "reverse": run.data_config.reverse}
    shown = None if unique or each is None else (lambda batch: each(batch, kind != "lines"))
    samples = generate(model, run.tokenizer, n, kind, seed=seed, each=shown, **options)
    if kind != "lines":
        return samples, True, []
    try:  # the training items, to count novel samples: a run samples without its data, but cannot count them
        seen = set().union(*(r.load_corpus(log=quiet).train for r in runs))
    except MakemoreError as e:
        if unique:
            raise MakemoreError(f"--unique needs the run's training data, which cannot be read here ({e.problem}); "
                                "put the data back where the run read it, as it was, or drop --unique") from None
        return samples, False, [f"novel: not counted, the training data cannot be read here ({e.problem})"]
    drawn, notes = list(samples), []
    if unique:
        for round_ in range(1, MAX_REDRAWS):
            found = list(dict.fromkeys(s for s in drawn if s not in seen))
            if len(found) >= n:
                break
            drawn += generate(model, run.tokenizer, n, kind, seed=None if seed is None else seed + round_, **options)
        samples = found[:n]
        if len(samples) < n:
            notes.append(f"only {len(samples)} novel samples found; try a higher --temperature")
    novel = sum(s not in seen for s in drawn)
    split = "training split" if len(runs) == 1 else "runs' training splits"
    notes.append(f"novel: {novel} of {len(drawn)} samples drawn ({novel / len(drawn):.0%}) are not in the {split}")
    return samples, False, notes


def evaluate_runs(run_dirs, split="test", checkpoint="best", data=None, encoding=None, items_out=None,
                  fit_weights=False, device="auto", out=print, log=print, runs=None):
    """Score a run (or several as one, their probabilities averaged) on a split of its data, or on all of
    the file data, and return the figures (a dict: see the task's scored); out hears them as eval prints
    them, log the rows written to items_out (a TSV of one row per item). runs: as sample_runs takes them."""
    runs = runs or open_runs(run_dirs)
    check_fit_weights(fit_weights, runs)
    if fit_weights and data is None and split == "val":
        raise MakemoreError("--fit-weights fits the weights on the val split, so scoring it there says nothing new; "
                            "pass --split test (or --data FILE)")
    if items_out is not None and runs[0].data_config.kind == "stream":
        raise MakemoreError(f"--items writes a row per item, and {runs[0].path} reads prose, which has no items; "
                            "drop --items")
    if items_out is not None:
        check_writable(items_out)  # before the scoring, not after it
    if items_out is not None and not items_out.resolve().parent.is_dir():  # told before the scoring, not after
        raise MakemoreError(f"cannot write --items {items_out}: the folder {items_out.parent} does not exist; make it, "
                            "or pass a file in a folder that does")
    if items_out is not None and items_out.exists() and not items_out.is_file():  # a FIFO would block, a device eat it
        raise MakemoreError(f"--items {items_out} is not a regular file; pass a file name, e.g. --items items.tsv")
    if items_out is not None and items_out.exists() and holds_run(items_out.resolve().parent):
        raise MakemoreError(f"--items {items_out} is a file of a run, which makemore does not write over; pass a new "
                            "file name, e.g. --items items.tsv")
    encodings = {run.data_config.encoding for run in runs}
    if data is not None and encoding is None and len(encodings) > 1:
        raise MakemoreError(f"these runs read their data as {' and '.join(sorted(encodings))}; pass --encoding to read "
                            f"{data} one way for all of them")
    models, device, weights = loaded(runs, fit_weights, checkpoint, device, out)
    scored = data or split  # what is scored, as the figures name it
    part = split if data is None else "data"  # and as scored_batches reads it
    task = runs[0].task
    where = f"{checkpoint}.pt at step {models[-1][1]['step']:,}"
    if len(runs) == 1 and items_out is None and task.streams_loss:  # summed as it goes, as in training
        (model, _), run = models[0], runs[0]
        batches, _ = scored_batches(run, model, device, part, data, encoding)
        loss = evaluate(model, batches, run.train_config.eval_batch_size, run.train_config.precision, progress=scored)
        out(f"{task.figures_of_loss(scored, loss)}, {batches.n_targets:,} characters, {where}")
        return task.scored_loss(loss, batches.n_targets)

    def show(run, ckpt, logp, targets):
        out(f"{run.path}: {task.figures(logp, targets, scored)}, {checkpoint}.pt at step {ckpt['step']:,}")

    members, targets, items = members_of(runs, models, device, part, data, encoding, show if len(runs) > 1 else None)
    logp = average(members, weights).double()
    if len(runs) > 1:
        where = f"{'the average' if weights is None else 'the weighted average'} of {len(runs)} runs ({checkpoint}.pt)"
    labels = getattr(runs[0].model_config, "labels", None)
    for line in task.eval_lines(logp, targets, items, labels, scored, where):
        out(line)
    if items_out is not None:
        write_items(items_out, *task.item_rows(logp, items, labels))
        log(f"items: {len(items):,} rows written to {items_out}")
    return task.scored(logp, targets)


def write_items(path, header, rows):
    """eval --items: a TSV file of one row per scored item, in the order of the split (or of --data)."""
    text = io.StringIO(newline="")
    writer = csv.writer(text, delimiter="\t", lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    if not Path(path).parent.is_dir():
        raise MakemoreError(f"cannot write --items {path}: the folder {Path(path).parent} does not exist; pass a file "
                            "in a folder you can write to")
    write_text(path, text.getvalue())


def classify_items(run_dirs, items, top_k=3, fit_weights=False, checkpoint="best", device="auto", log=print, runs=None):
    """The top_k likeliest labels of each item, with their probabilities: [(item, [(label, p), ...]), ...];
    several classifier runs are averaged."""
    runs = runs or open_runs(run_dirs)
    runs[0].task.require("classify", runs[0])
    check_fit_weights(fit_weights, runs)
    if not items:
        raise MakemoreError("no items to classify; pass them as arguments or on stdin")
    models, device, weights = loaded(runs, fit_weights, checkpoint, device, log)
    logp = average([item_log_probs(model, run.tokenizer, items, run.data_config.max_item_len,
                                   run.train_config.eval_batch_size) for run, (model, _) in zip(runs, models)], weights)
    return list(zip(items, top_labels(logp, runs[0].model_config.labels, top_k)))
