"""The `makemore` command: a thin layer that turns options into configs and calls the library.

Options for the model, data and training configs are made from the dataclass fields (help text
and choices live in the field metadata), so the CLI and the configs never drift apart. This module
imports only what is free of torch; each command imports the library it calls, so that --help and
bad options answer in a fraction of a second rather than after torch has loaded.
"""
import dataclasses
import os
import shlex
import sys
from pathlib import Path

import click

from makemore import launch
from makemore.config import (
    SEEDS,
    THREADS_ENV,
    DataConfig,
    TrainConfig,
    check_name,
    check_threads,
    default_run_name,
    option_name,
)
from makemore.data import resolve
from makemore.errors import MakemoreError
from makemore.models import FINETUNED, LANGUAGE_MODELS, MODELS, model_config
from makemore.models.configs import ClassifierConfig
from makemore.processes import die_with_parent, terminated_as_interrupt
from makemore.search import SweepConfig, new_sweep_config

PY_TYPES = {int: click.INT, float: click.FLOAT, str: click.STRING, bool: click.BOOL}
INTERRUPTED = "interrupted"  # what a command returns when a signal stopped it: the process exits 130


class SectionOption(click.Option):
    """An option that --help lists under a heading of its own (see Command)."""

    def __init__(self, *args, section, **attrs):
        super().__init__(*args, **attrs)
        self.section = section


class Command(click.Command):
    """--help says what the command is for and shows its examples first, then lists the command's own
    options, then each config's under its heading (model, data, ...)."""

    def format_help(self, ctx, formatter):
        self.format_usage(ctx, formatter)
        self.format_help_text(ctx, formatter)
        self.format_epilog(ctx, formatter)
        self.format_options(ctx, formatter)

    def format_options(self, ctx, formatter):
        sections = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record:
                sections.setdefault(getattr(param, "section", "Options"), []).append(record)
        for heading, records in sections.items():
            with formatter.section(heading):
                formatter.write_dl(records)


class Group(click.Group):
    """Prints every user error (ours and click's own) as one line on stderr and exits with status 2, and
    exits 130 when a command returns INTERRUPTED; its commands list their options by heading (Command)."""

    command_class = Command

    def main(self, args=None, prog_name=None, standalone_mode=True, **extra):
        die_with_parent()  # a sweep worker or --nproc rank ends with the makemore that started it
        try:
            with terminated_as_interrupt():  # SIGTERM stops every command as Ctrl-C does
                rv = super().main(args, prog_name or "makemore", standalone_mode=False, **extra)
        except MakemoreError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)
        except OSError as e:  # a path of the user's that cannot be read or written: read-only, full, missing, ...
            where = f"{e.filename}: " if e.filename else ""
            click.echo(f"error: {where}{e.strerror or e}; check the path, its permissions and the free space",
                       err=True)
            sys.exit(2)
        except click.UsageError as e:
            where = f" (see '{e.ctx.command_path} --help')" if e.ctx else ""
            click.echo(f"error: {e.format_message()}{where}", err=True)
            sys.exit(2)
        except click.ClickException as e:
            click.echo(f"error: {e.format_message()}", err=True)
            sys.exit(e.exit_code)
        except click.Abort:
            click.echo("interrupted", err=True)
            sys.exit(130)
        if standalone_mode:
            sys.exit(130 if rv == INTERRUPTED else rv if isinstance(rv, int) else 0)
        return rv

    def resolve_command(self, ctx, args):
        name, command, rest = super().resolve_command(ctx, args)
        if launch.launched() and name not in launch.COMMANDS:
            raise MakemoreError(f"makemore {name} runs in one process; torchrun (or --nproc) starts "
                                f"{' or '.join(launch.COMMANDS)}")
        return name, command, rest


def checked_name(what):
    """A --name callback: one folder name under --out-dir (config.check_name)."""
    return lambda ctx, param, value: value if value is None else check_name(value, what)


def set_threads(ctx, param, value):
    if value is not None:  # read where the device is picked, and by sweep workers, which inherit it
        os.environ[THREADS_ENV] = str(check_threads(value))


threads_option = click.option(
    "--threads", type=click.IntRange(min=1), expose_value=False, callback=set_threads,
    help=f"CPU threads for torch  [default: one per core that no other process keeps busy; env: {THREADS_ENV}]")

nproc_option = click.option(
    "--nproc", type=click.IntRange(min=1), default=1, show_default=True,
    help="processes that train together on this machine (data parallel, as torchrun --nproc_per_node N): one per "
         "GPU, or CPU processes that share the cores; the figures do not depend on N")


def field_options(fields, section, with_defaults=True, hidden=False):
    """click options for dataclass fields that have help text, listed under section (e.g. "Data
    options") in --help; without defaults an unset option is None."""
    def decorate(f):
        for fld in reversed(fields):
            meta = fld.metadata
            kind = click.Choice(meta["choices"]) if "choices" in meta else PY_TYPES[fld.type]
            f = click.option(
                option_name(fld.name), fld.name, type=kind, help=meta["help"], cls=SectionOption, section=section,
                default=fld.default if with_defaults else None, show_default=with_defaults, hidden=hidden,
            )(f)
        return f
    return decorate


def model_fields():
    """Every model's config fields, once each; the help says which models use a field and its default."""
    merged = {}
    for model, spec in MODELS.items():
        for fld in dataclasses.fields(spec.config):
            if "help" in fld.metadata:
                merged.setdefault(fld.name, (fld, []))[1].append(f"{model}: {fld.default}")
    out = []
    for fld, defaults in merged.values():
        copy = dataclasses.field(default=fld.default, metadata={
            **fld.metadata, "help": f"{fld.metadata['help']}  [default {', '.join(defaults)}]"})
        copy.name, copy.type = fld.name, fld.type
        out.append(copy)
    return out


def train_fields(models=tuple(MODELS)):
    """TrainConfig's fields; the help gives each field's default, and the models that bring their own
    (an LSTM trains 6000 steps at lr 0.003 unless told otherwise)."""
    defaults = {model: MODELS[model].train_defaults(model_config(model)) for model in models}
    out = []
    for fld in dataclasses.fields(TrainConfig):
        own = {}  # value -> the models that default to it
        for model in models:
            own.setdefault(defaults[model].get(fld.name, fld.default), []).append(model)
        values = sorted(own, key=lambda v: v != fld.default) if fld.default in own else list(own)
        parts = [f"{values[0]}"] + [f"{', '.join(own[v])}: {v}" for v in values[1:]]
        copy = dataclasses.field(default=fld.default, metadata={
            **fld.metadata, "help": f"{fld.metadata['help']}  [default: {'; '.join(parts)}]"})
        copy.name, copy.type = fld.name, fld.type
        out.append(copy)
    return out


def picked(ctx, cls, values):
    """The fields of cls that were given on the command line (not left at their defaults)."""
    names = {f.name for f in dataclasses.fields(cls)}
    source = click.core.ParameterSource.COMMANDLINE
    return {k: v for k, v in values.items() if k in names and ctx.get_parameter_source(k) == source}


def data_config(values):
    """The data options as a config; a local --data that does not exist is refused here, at once."""
    config = subset(DataConfig, values)
    resolve(config)
    return config


def subset(cls, values):
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in names})


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="makemore")
def cli():
    """Character-level language models that make more of what you give them."""


# ----------------------------------------------------------------------------------------------
# train

TRAIN_EXAMPLES = """
\b
Examples:
  makemore train --model mlp
  makemore train --model mlp --data names.txt --block-size 8 --n-hidden 512 --max-steps 60000
  makemore train --model mlp --data shakespeare --name mlp-shakespeare
  makemore train --resume --name mlp-names --max-steps 60000
"""


@cli.command(epilog=TRAIN_EXAMPLES,
             short_help="train a language model (or a classifier from scratch)")
@click.option("--model", type=click.Choice(list(MODELS)), default="mlp", show_default=True,
              help="model family; some bring their own training defaults (README, Models)")
@click.option("--name", callback=checked_name("run"),
              help="run name: the run lands in OUT_DIR/NAME  [default: MODEL-DATA, numbered if taken]")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("runs"), show_default=True,
              help="folder that holds runs")
@click.option("--resume", is_flag=True, help="continue run NAME from its last.pt (model, optimizer, step, random "
                                             "state)")
@field_options(model_fields(), "Model options", with_defaults=False)
@field_options(dataclasses.fields(DataConfig), "Data options")
@field_options(train_fields(), "Training options", with_defaults=False)
@click.pass_context
@threads_option
@nproc_option
def train(ctx, model, name, out_dir, resume, nproc, **options):
    """Train a language model (or, with --model classifier, a classifier from scratch); the run
    directory gets checkpoints, TensorBoard logs, metrics and samples."""
    if not resume:  # the data and model options are checked before torch loads (with the library)
        data = data_config(options)
        model_overrides = {f.name: options[f.name] for f in model_fields() if options[f.name] is not None}
        model_config(model, **model_overrides)
    else:
        if not name:
            raise MakemoreError("--resume needs --name of the run to continue, e.g. --name mlp-names")
        model_options = {f.name for f in model_fields()}
        ignored = ["model"] if ctx.get_parameter_source("model") == click.core.ParameterSource.COMMANDLINE else []
        ignored += [k for k, v in options.items() if k in model_options and v is not None]
        ignored += list(picked(ctx, DataConfig, options))
        if ignored:
            raise MakemoreError("--resume keeps the run's model and data; drop "
                                f"{', '.join(option_name(k) for k in ignored)}")
        if not (out_dir / name / "config.json").exists():
            raise MakemoreError(f"there is no run {out_dir / name} to resume; check --name and --out-dir, or train it "
                                "without --resume")
    if nproc > 1 and not launch.launched():
        return launch.run(nproc)
    from makemore.runs import run_training

    if resume:
        reason, _ = run_training(out_dir / name, resume=True, train_overrides=picked(ctx, TrainConfig, options))
        return reason
    run_dir = out_dir / (name or default_run_name(out_dir, model, options["data"]))
    reason, _ = run_training(run_dir, model, model_overrides, data,
                             picked(ctx, TrainConfig, options))
    return reason


# ----------------------------------------------------------------------------------------------
# lr-find

LR_FIND_EXAMPLES = """
\b
Examples:
  makemore lr-find --model mlp
  makemore lr-find --model mlp --norm batch --batch-size 256
  makemore lr-find --model lstm --data shakespeare --start 1e-5 --end 1 --steps 300
  makemore lr-find --from runs/lm-surnames --data surnames       # for makemore finetune --from runs/lm-surnames
"""
# the options of train that a range test sets itself, or that do nothing in it: refused, with the reason
LR_FIND_FIXES = {"max_steps", "lr", "warmup_steps", "min_lr_frac", "eval_interval", "eval_batch_size", "patience",
                 "log_interval", "ema"}


@cli.command(name="lr-find", epilog=LR_FIND_EXAMPLES,
             short_help="find a learning rate for train or finetune (a range test)")
@click.option("--model", type=click.Choice(list(MODELS)), help="model family, as for train  [default: mlp; classifier "
                                                               "with --from]")
@click.option("--from", "lm_run", type=click.Path(path_type=Path),
              help="a language-model run: find the rate for a classifier finetuned from it (makemore finetune --from)")
@click.option("--backward", "backward_run", type=click.Path(path_type=Path),
              help="with --from: a language model that reads right to left, the classifier's second body (finetune "
                   "--backward)")
@click.option("--start", type=float, default=1e-5, show_default=True, help="the first learning rate")
@click.option("--end", type=float, default=1.0, show_default=True,
              help="the last learning rate, unless the loss diverges first")
@click.option("--steps", type=int, default=250, show_default=True, help="training steps from --start to --end")
@click.option("--name", callback=checked_name("lr-find"),
              help="the curve lands in OUT_DIR/NAME.csv and NAME.png  [default: MODEL-DATA, numbered if "
                             "taken]")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/lr-find"),
              show_default=True, help="folder for the curves")
@field_options(model_fields(), "Model options", with_defaults=False)
@field_options(dataclasses.fields(DataConfig), "Data options")
@field_options([f for f in train_fields() if f.name not in LR_FIND_FIXES], "Training options", with_defaults=False)
@field_options([f for f in train_fields() if f.name in LR_FIND_FIXES], "Training options", with_defaults=False,
               hidden=True)
@click.pass_context
@threads_option
def lr_find(ctx, model, lm_run, backward_run, start, end, steps, name, out_dir, **options):
    """Find a learning rate: train a fresh model while the rate grows from --start to --end, plot the loss
    against the rate, and suggest --lr for `makemore train` (with --from: `makemore finetune`) with the
    same options (Smith 2017)."""
    from makemore.data import title
    from makemore.files import make_dir, write_csv
    from makemore.lrfind import COLUMNS, FALL, suggest
    from makemore.lrfind import lr_find as range_test
    from makemore.plots import lr_curve

    fixed = [option_name(k) for k in LR_FIND_FIXES if options[k] is not None]
    if fixed:
        raise MakemoreError(f"lr-find sets the schedule itself (the rate grows from --start to --end in --steps, "
                        f"without validation); drop {', '.join(sorted(fixed))}")
    if lm_run and model not in (None, FINETUNED):
        raise MakemoreError(f"--from finetunes a classifier, so the range test cannot train a {model}; drop --model "
                            f"{model}")
    model = model or (FINETUNED if lm_run else "mlp")
    stem = name or default_run_name(out_dir, model, options["data"], suffix=".png")
    model_overrides = {f.name: options[f.name] for f in model_fields() if options[f.name] is not None}
    data = data_config(options)
    reason, rows = range_test(out_dir / stem, model, model_overrides, data, picked(ctx, TrainConfig, options),
                              start, end, steps, pretrained=lm_run, backward=backward_run)
    lowest, suggested, why_none = suggest(rows, reason)
    make_dir(out_dir)
    write_csv(out_dir / f"{stem}.csv", COLUMNS, rows)
    what = f"classifier finetuned from {lm_run}" if lm_run else model
    lr_curve(rows, lowest, suggested, out_dir / f"{stem}.png", f"lr-find: {what} on {title(data)}, {len(rows)} "
                                                               "steps")
    ended = {"end": f"reached --end {end:g}", "diverged": f"diverged at lr {rows[-1]['lr']:.2g}",
             "interrupted": f"interrupted at lr {rows[-1]['lr']:.2g}"}[reason]
    click.echo(f"lr-find {ended} after {len(rows)} steps; the smoothed loss is lowest, {lowest['smoothed']:.4f}, "
               f"at lr {lowest['lr']:.2g}")
    if suggested is None:
        click.echo(f"no suggestion: {why_none}")
    else:
        given = [f"{option_name(k)} {shlex.quote(str(v).lower() if isinstance(v, bool) else str(v))}"
                 for k, v in ctx.params.items() if k not in ("model", "lm_run", "backward_run", "start", "end", "steps",
                                                             "name", "out_dir")
                 and ctx.get_parameter_source(k) == click.core.ParameterSource.COMMANDLINE]
        if lm_run:
            command = ["finetune", "--from", shlex.quote(str(lm_run))]
            command += ["--backward", shlex.quote(str(backward_run))] if backward_run else []
        else:
            command = ["train", "--model", model]
        click.echo(f"suggested --lr {suggested:.2g}, where the smoothed loss has made {FALL:.0%} of its fall; train "
                   "with:")
        click.echo(f"  makemore {' '.join(command + given + [f'--lr {suggested:.2g}'])}")
    click.echo(f"wrote {out_dir / f'{stem}.csv'} and {out_dir / f'{stem}.png'}")
    return reason


# ----------------------------------------------------------------------------------------------
# sample and eval

SAMPLE_EXAMPLES = """
\b
Examples:
  makemore sample --run runs/mlp-names
  makemore sample --run runs/mlp-names -n 20 --temperature 0.8 --prefix al
  makemore sample --run runs/mlp-names --unique --top-k 10 --seed 7
  makemore sample --run runs/mlp-names --run runs/lstm-names --fit-weights   # from their weighted mean
"""


@cli.command(epilog=SAMPLE_EXAMPLES,
             short_help="generate samples from a trained run (or several)")
@click.option("--run", "run_dirs", type=click.Path(path_type=Path), required=True, multiple=True,
              help="run directory, e.g. runs/mlp-names; several (--run A --run B: language models of the same "
                   "characters) sample as one, from the mean of their probabilities")
@click.option("-n", "--num", "n", type=int, default=20, show_default=True, help="number of samples")
@click.option("--temperature", type=float, default=1.0, show_default=True,
              help="below 1: safer picks; above 1: wilder; 0: always the likeliest character")
@click.option("--top-k", type=int, default=None, help="sample only from the k likeliest characters  [default: all]")
@click.option("--prefix", "--prompt", default="", help="every sample starts with this text (ends, from a model "
                                                       "trained with --reverse)")
@click.option("--seed", type=click.IntRange(0, SEEDS - 1), default=None,
              help="seed, for repeatable samples  [default: random]")
@click.option("--unique", is_flag=True, help="skip samples that are in the training data (line corpora)")
@click.option("--max-len", type=int, default=None, help="characters generated per sample at most, after --prefix  "
                                                        "[default: 64 for lines, 500 for prose]")
@click.option("--fit-weights", is_flag=True,
              help="several runs: weigh them by the mixture weights that score their val split best (EM), as eval does")
@click.option("--checkpoint", type=click.Choice(["best", "last"]), default="best", show_default=True,
              help="which weights")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps")
@threads_option
def sample(run_dirs, n, temperature, top_k, prefix, seed, unique, max_len, fit_weights, checkpoint, device):
    """Generate samples from a trained run (or from several, their probabilities averaged), and say how
    many are new."""
    from makemore.predict import sample_runs

    shown = []

    # each batch as it is drawn: a reader that has gone (| head) stops the sampling, with click's quiet exit 1
    def show(batch, prose):
        between = "\n---\n" if prose else "\n"  # prose samples hold newlines of their own
        click.echo(("---\n" if prose and shown else "") + between.join(batch))
        shown.append(len(batch))

    samples, prose, notes = sample_runs(run_dirs, n, temperature, top_k, prefix, seed, unique, max_len, fit_weights,
                                        checkpoint, device, log=err, each=show)
    if not shown:  # --unique: drawn again until they are new, shown at the end
        show(samples, prose)
    for note in notes:
        err(note)


def err(message):
    click.echo(message, err=True)


EVAL_EXAMPLES = """
\b
Examples:
  makemore eval --run runs/mlp-names
  makemore eval --run runs/mlp-names --split val --checkpoint last
  makemore eval --run runs/mlp-names --data more_names.txt
  makemore eval --run runs/mlp-names --items names.tsv               # and each name's loss, one row each
  makemore eval --run runs/mlp-names --run runs/lstm-names            # each character's probability averaged
  makemore eval --run runs/clf-1 --run runs/clf-2 --run runs/clf-3    # the classifiers' probabilities averaged
"""


@cli.command(name="eval", epilog=EVAL_EXAMPLES,
             short_help="score a run on a split of its data, or on a file")
@click.option("--run", "run_dirs", type=click.Path(path_type=Path), required=True, multiple=True,
              help="run directory, e.g. runs/mlp-names; several runs (--run A --run B: classifiers, or language "
                   "models of the same data) are scored as one, their probabilities averaged")
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="test", show_default=True,
              help="which split")
@click.option("--checkpoint", type=click.Choice(["best", "last"]), default="best", show_default=True,
              help="which weights")
@click.option("--data", help="score all of this file (or folder, or hf:<dataset>) instead of a split, read as the run "
                             "reads its data (lines, prose or labeled)")
@click.option("--encoding", help="text encoding of --data  [default: the run's]")
@click.option("--items", "items_out", type=click.Path(dir_okay=False, path_type=Path),
              help="also write one row per scored item to this TSV file: a language model's loss of each line, or a "
                   "classifier's label, prediction and their probabilities")
@click.option("--fit-weights", is_flag=True,
              help="several runs: weigh them by the mixture weights that score their val split best (EM), not equally")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps")
@click.pass_context
@threads_option
def evaluate_cmd(ctx, run_dirs, split, checkpoint, data, encoding, items_out, fit_weights, device):
    """Mean negative log-likelihood per character of a run on a split of its data, or on a file of
    yours (a classifier's accuracy, macro-F1 and per-label precision and recall)."""
    from makemore.predict import evaluate_runs

    if data is None and encoding is not None:
        raise MakemoreError("--encoding is the encoding of --data; pass --data FILE with it, or drop it")
    if data is not None and ctx.get_parameter_source("split") == click.core.ParameterSource.COMMANDLINE:
        raise MakemoreError("--data scores a file of yours and --split a split of the run's data; pass one of them")
    evaluate_runs(run_dirs, split, checkpoint, data, encoding, items_out, fit_weights, device, out=click.echo, log=err)


COMPARE_EXAMPLES = """
\b
Examples:
  makemore compare
  makemore compare --data ../shared/data/names.txt --out-dir runs/compare-shared
  makemore compare --models bigram,mlp --max-steps 2000
"""


@cli.command(epilog=COMPARE_EXAMPLES,
             short_help="train every model on one split: a table and a bar chart")
@click.option("--data", default="names", show_default=True, help="corpus, as for train --data")
@click.option("--models", default=",".join(LANGUAGE_MODELS), show_default=True,
              help="comma-separated language models to compare")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/compare"),
              show_default=True, help="one run per model lands here, with compare.csv, compare.md and compare.png")
@click.option("--max-steps", type=int, default=None, help="the same step budget for every model that trains by steps  "
                                                          "[default: each model's own]")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps")
@threads_option
def compare(data, models, out_dir, max_steps, device):
    """Train every model with its defaults on one split and seed; write a table and a bar chart."""
    from makemore.compare import compare as run_compare

    names = list(dict.fromkeys(m.strip() for m in models.split(",") if m.strip()))  # each model once
    unknown = [m for m in names if m not in LANGUAGE_MODELS]
    if unknown or not names:
        raise MakemoreError(f"unknown model(s) {', '.join(unknown) or '(none given)'}; pass --models from: "
                            f"{', '.join(LANGUAGE_MODELS)}")
    overrides = {"device": device, **({"max_steps": max_steps} if max_steps is not None else {})}
    reason, _ = run_compare(names, out_dir, DataConfig(data=data), overrides)
    return show_results(reason, out_dir, "compare")


def show_results(reason, out_dir, stem):
    """An experiment's table (STEM.md) and where its CSV and plot are, unless it was interrupted."""
    if reason == INTERRUPTED:
        return reason
    click.echo((out_dir / f"{stem}.md").read_text(), nl=False)
    click.echo(f"wrote {out_dir / f'{stem}.csv'} and {out_dir / f'{stem}.png'}")


RUNS_EXAMPLES = """
\b
Examples:
  makemore runs                          # the runs in runs/
  makemore runs --sort val               # best first: language models by val loss, then classifiers by val accuracy
  makemore runs runs/sweeps/mlp-names    # a sweep's trials
"""


@cli.command(name="runs", epilog=RUNS_EXAMPLES,
             short_help="list the runs in a folder, with their figures")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path), default=Path("runs"))
@click.option("--sort", type=click.Choice(["name", "val", "recent"]), default="name", show_default=True,
              help="order: by name; by data, then the best checkpoint's val figure, best first; or the latest trained "
                   "first")
def list_runs(folder, sort):
    """A table of the runs in FOLDER (default: runs): model, data, steps, the best checkpoint's val and
    test figures, training time, and whether each finished."""
    from makemore.listing import find_runs, run_row, sweep_states, table

    paths, groups = find_runs(folder)
    root = folder.parent if paths == [folder] else folder
    states = sweep_states(root)
    rows = [(*run_row(p, root, states.get(p.name)), p) for p in paths]
    if sort == "val":
        rows.sort(key=lambda r: r[1])
    elif sort == "recent":
        rows.sort(key=lambda r: max(f.stat().st_mtime for f in r[2].iterdir()), reverse=True)
    if rows:
        click.echo(table([r[0] for r in rows]))
        click.echo("val, test: the best checkpoint's loss in nats/char (language models), accuracy / macro-F1 "
                   "(classifiers)")
    else:
        click.echo(f"no runs in {folder}" + ("" if groups else "; train one with `makemore train`"))
    unfinished = [r[2].name for r in rows if r[0]["state"] == "unfinished"]
    if unfinished:
        click.echo(f"the sweep runs its unfinished trials again: makemore sweep --resume --name {root.name} --out-dir "
                   f"{root.parent}"
                   if states else f"an unfinished run carries on with: makemore train --resume --out-dir {root} --name "
                   f"{unfinished[0] if len(unfinished) == 1 else 'RUN'}")
    if groups:
        click.echo(f"folders of runs in {folder}: {', '.join(g.name for g in groups)} (list one: makemore runs "
                   f"{folder / groups[0].name})")


INSPECT_EXAMPLES = """
\b
Examples:
  makemore inspect --run runs/mlp-names                        # embeddings.png, activations.png
  makemore train --model mlp --max-steps 0 --name mlp-init     # the same model untrained, to compare
  makemore inspect --run runs/mlp-init
  makemore inspect --run runs/bigram-names                     # bigram.png: the table of part 1
"""


@cli.command(epilog=INSPECT_EXAMPLES,
             short_help="plot a run's embeddings and tanh activations")
@click.option("--run", "run_dir", type=click.Path(path_type=Path), required=True,
              help="run directory, e.g. runs/mlp-names")
@click.option("--checkpoint", type=click.Choice(["best", "last"]), default="best", show_default=True,
              help="which weights")
def inspect(run_dir, checkpoint):
    """Look inside a run's model as the lectures do, and write the figures into the run's folder: its
    character embeddings (embeddings.png), and how saturated its tanh layers are on the val split
    (activations.png: an MLP's and a WaveNet's); a bigram's table of next-character probabilities
    (bigram.png)."""
    from makemore.inspection import ACTIVATION_BATCH, inspect_run
    from makemore.predict import scored_batches
    from makemore.runs import Run

    run = Run.open(run_dir)
    model, ckpt = run.load_model(checkpoint)

    def val_batch():  # read only for a model with tanh layers
        batches, _ = scored_batches(run, model, "cpu", "val")
        return next(batches.iter_all(ACTIVATION_BATCH))

    for line in inspect_run(run, model, f"{checkpoint}.pt, step {ckpt['step']:,}", val_batch):
        click.echo(line)


# ----------------------------------------------------------------------------------------------
# classifiers: finetune, classify, transfer

FINETUNE_EXAMPLES = """
\b
Examples:
  makemore train --model lstm --data surnames --name lm-surnames        # pretrain on the items alone
  makemore finetune --from runs/lm-surnames --data surnames --name clf-surnames
  makemore finetune --from runs/lm-surnames --data surnames --freeze-steps 300 --body-lr-mult 0.3
  makemore train --model lstm --data surnames --reverse true --name lm-surnames-bw   # reads right to left
  makemore finetune --from runs/lm-surnames --backward runs/lm-surnames-bw --data surnames
  makemore train --model classifier --encoder lstm --data surnames      # the same architecture from scratch
"""


FINETUNE_SETS = ("encoder", "bidirectional")  # set by --from and --backward


def classifier_fields(exclude=()):

    return [f for f in dataclasses.fields(ClassifierConfig) if "help" in f.metadata and f.name not in exclude]


@cli.command(epilog=FINETUNE_EXAMPLES,
             short_help="train a classifier from a pretrained language model")
@click.option("--from", "lm_run", type=click.Path(path_type=Path), required=True,
              help="a language-model run (makemore train) whose body and tokenizer the classifier starts from")
@click.option("--backward", "backward_run", type=click.Path(path_type=Path),
              help="a language-model run trained as --from was but with --reverse true: a second body that reads each "
                   "item right to left (a bidirectional classifier)")
@click.option("--name", callback=checked_name("run"),
              help="run name: the run lands in OUT_DIR/NAME  [default: classifier-DATA, numbered if taken]")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("runs"), show_default=True,
              help="folder that holds runs")
@click.option("--leak-check", type=click.Choice(["refuse", "warn"]), default="refuse", show_default=True,
              help="when the language model's pretraining text holds val or test items of the labeled data: refuse, "
                   "or say how many and go on")
@field_options(classifier_fields(exclude=FINETUNE_SETS), "Classifier options")
# --reverse is for language models; --min-char-count, the tokenizer's, comes with --from's
@field_options([f for f in dataclasses.fields(DataConfig) if f.name not in ("reverse", "min_char_count")],
               "Data options")
@field_options(train_fields([FINETUNED]), "Training options", with_defaults=False)
@click.pass_context
@threads_option
@nproc_option
def finetune(ctx, lm_run, backward_run, name, out_dir, nproc, leak_check, **options):
    """Train a classifier on labeled data, starting from a pretrained language model's body.

    Labeled data: a folder of <label>.txt files (one item per line) or a file of label<TAB>item
    lines. Resume an interrupted run with `makemore train --resume --name NAME`.
    """
    if nproc > 1 and not launch.launched():
        return launch.run(nproc)
    from makemore.runs import run_training

    run_dir = out_dir / (name or default_run_name(out_dir, FINETUNED, options["data"]))
    head_options = {f.name: options[f.name] for f in classifier_fields(exclude=FINETUNE_SETS)}
    reason, _ = run_training(run_dir, FINETUNED, head_options, data_config(options),
                             picked(ctx, TrainConfig, options), pretrained=lm_run, backward=backward_run,
                             leak_check=leak_check)
    return reason


CLASSIFY_EXAMPLES = """
\b
Examples:
  makemore classify --run runs/clf-surnames Nakamura Schmidt "O'Brien"
  cut -f2 names.tsv | makemore classify --run runs/clf-surnames --top-k 1
  makemore classify --run runs/clf-1 --run runs/clf-2 Nakamura      # the classifiers' probabilities averaged
  makemore classify --run runs/clf-1 --run runs/clf-2 --fit-weights Nakamura   # weighted as their val split says
"""


@cli.command(epilog=CLASSIFY_EXAMPLES,
             short_help="the likeliest labels of items, with probabilities")
@click.option("--run", "run_dirs", type=click.Path(path_type=Path), required=True, multiple=True,
              help="classifier run directory; several (--run A --run B) are averaged")
@click.argument("items", nargs=-1)
@click.option("--top-k", type=click.IntRange(min=1), default=3, show_default=True, help="labels shown per item")
@click.option("--fit-weights", is_flag=True,
              help="several runs: weigh them by the mixture weights that score their val split best (EM), as eval does")
@click.option("--checkpoint", type=click.Choice(["best", "last"]), default="best", show_default=True,
              help="which weights")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps")
@threads_option
def classify(run_dirs, items, top_k, fit_weights, checkpoint, device):
    """The likeliest labels of each ITEM (or of each line of stdin), with their probabilities."""
    from makemore.predict import classify_items

    if not items:
        items = [line.strip() for line in click.get_text_stream("stdin") if line.strip()]
    labelled = classify_items(run_dirs, items, top_k, fit_weights, checkpoint, device, log=err)
    width = max(len(item) for item, _ in labelled)
    for item, best in labelled:
        click.echo(f"{item:<{width}}  " + "  ".join(f"{label} {p:.3f}" for label, p in best))


TRANSFER_EXAMPLES = """
\b
Examples:
  makemore transfer --data surnames --encoder lstm --fractions 0.01,0.05,0.2,1 --seeds 3
  makemore transfer --data names_sex.tsv --encoder mlp --block-size 8 --max-steps 1000
\b
Model options (--n-hidden, ...) shape the body of every run; --freeze-steps, --unfreeze and
--body-lr-mult apply to the pretrained classifiers; training options apply to the classifiers.
"""


@cli.command(epilog=TRANSFER_EXAMPLES,
             short_help="scratch against pretrained classifiers, by number of labels")
@click.option("--data", default="surnames", show_default=True, help="labeled corpus, as for finetune --data")
@click.option("--encoder", type=click.Choice(LANGUAGE_MODELS), default="lstm", show_default=True,
              help="the language model that is pretrained, and the classifiers' body")
@click.option("--fractions", default="0.01,0.05,0.2,1", show_default=True,
              help="comma-separated shares of the train labels")
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True,
              help="runs per share and initialisation (seeds 1..N)")
@click.option("--pretrain-steps", type=click.IntRange(min=1), default=None,
              help="steps of language-model pretraining  [default: the model's own]")
@click.option("--pretrain-data", default=None,
              help="unlabeled text the language model is pretrained on, as for train --data (prose, lines, a folder, "
                   "hf:<dataset>)  [default: the items of --data's train split]")
@click.option("--leak-check", type=click.Choice(["refuse", "warn"]), default="refuse", show_default=True,
              help="when --pretrain-data holds val or test items of --data: refuse, or say how many and go on")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/transfer"),
              show_default=True,
              help="the language model, every classifier run, transfer.csv, transfer.md and transfer.png land here")
@field_options([f for f in model_fields() if f.name != "encoder"], "Model options", with_defaults=False)
@field_options(train_fields([FINETUNED]), "Training options", with_defaults=False)
@click.pass_context
@threads_option
def transfer(ctx, data, encoder, fractions, seeds, pretrain_steps, pretrain_data, leak_check, out_dir, **options):
    """Classifiers from scratch and from a pretrained language model, against the number of labels."""
    from makemore.transfer import transfer as run_transfer

    try:
        shares = [float(f) for f in fractions.split(",") if f.strip()]
    except ValueError:
        raise MakemoreError(f"--fractions must be comma-separated numbers in (0, 1], got {fractions!r}") from None
    if not shares or not all(0 < f <= 1 for f in shares):
        raise MakemoreError(f"--fractions must be comma-separated numbers in (0, 1], got {fractions!r}")
    own = {f.name for f in dataclasses.fields(ClassifierConfig)}
    training = {f.name for f in dataclasses.fields(TrainConfig)}
    given = {k: v for k, v in options.items() if v is not None and k not in training}
    train_overrides = picked(ctx, TrainConfig, options)
    pretrain = {k: v for k, v in train_overrides.items() if k in ("device", "precision")}
    if pretrain_steps:
        pretrain["max_steps"] = pretrain_steps
    reason, _ = run_transfer(DataConfig(data=data), encoder, sorted(set(shares)), list(range(1, seeds + 1)), out_dir,
                             {k: v for k, v in given.items() if k not in own},
                             {k: v for k, v in given.items() if k in own}, train_overrides, pretrain,
                             pretrain_data=pretrain_data and DataConfig(data=pretrain_data), leak_check=leak_check)
    return show_results(reason, out_dir, "transfer")


BASELINE_EXAMPLES = """
\b
Examples:
  makemore baseline --data glosses
  makemore baseline --data reviews.csv --text-column review --label-column stars
  makemore baseline --data surnames --c 30 --label-frac 0.05
"""


@cli.command(epilog=BASELINE_EXAMPLES,
             short_help="the character n-gram baseline a classifier must beat")
@click.option("--c", "c", type=click.FloatRange(min=0, min_open=True), default=3.0, show_default=True,
              help="inverse regularisation strength of the logistic regression")
@click.option("--ngrams", default="1,4", show_default=True, help="shortest and longest character n-grams")
@click.option("--data", default="glosses", show_default=True, help="labeled data, as for finetune --data")
@field_options([f for f in dataclasses.fields(DataConfig) if f.name not in ("data", "reverse", "min_char_count",
                                                                             "seq_len", "max_item_len")],
               "Data options")
def baseline(c, ngrams, data, **options):
    """Fit a character n-gram TF-IDF + logistic-regression classifier on the train split of labeled data
    and score its val and test splits: the split `makemore train --model classifier` makes of the same
    data and options. Needs scikit-learn (pip install 'makemore[baseline]')."""
    from makemore.api import baseline as fit_baseline

    lo, _, hi = ngrams.partition(",")
    if not (lo.strip().isdigit() and hi.strip().isdigit() and 1 <= int(lo) <= int(hi) <= 8):
        raise MakemoreError(f"--ngrams must be two whole numbers from 1 to 8, the shortest first, e.g. 1,4; got "
                            f"{ngrams!r}")
    figures = fit_baseline(data, c=c, ngrams=(int(lo), int(hi)), log=err, **options)
    click.echo(f"{figures['model']}: {figures['train_items']:,} train items, {figures['seconds']:.1f} s")
    for split in ("val", "test"):
        if f"{split}_accuracy" in figures:
            click.echo(f"{split} accuracy {figures[f'{split}_accuracy']:.4f} "
                       f"macro-F1 {figures[f'{split}_macro_f1']:.4f} "
                       f"loss {figures[f'{split}_loss']:.4f} nats/item")


# ----------------------------------------------------------------------------------------------
# sweep

SWEEP_EXAMPLES = """
\b
Examples:
  makemore sweep --model mlp --data names --trials 24 --parallel 2 \\
      --param lr=log:1e-4:3e-2 --param n_hidden=64,128,256,512 --param block_size=3..8 --max-steps 20000
  makemore sweep --space sweeps/mlp.toml --name mlp-names
  makemore sweep --from runs/lm-surnames --data surnames --param lr=log:1e-3:1e-2 --param head_dropout=0..0.5
  makemore sweep --from runs/lm-surnames --backward runs/lm-surnames-bw --data surnames --param body_lr_mult=log:0.1:1
  makemore sweep --name mlp-names --resume          # carries on after an interruption
  makemore sweep --name mlp-names --report          # table and plots of what is there
  makemore sweep --name mlp-names --resume --storage postgresql://host/db   # join from a second machine
\b
--param NAME=VALUES: a,b,c (choices), 3..8 (integers), 0..0.5 (floats), log:1e-4:1e-2 (log-uniform),
float:0:0.5 (uniform), int:16:512 / intlog:16:512 (integers, log-spaced).
Other options of `makemore train` (--max-steps, --device, ...) are fixed for every trial. With --space,
a setting named on the command line (searched or fixed) replaces the file's.
"""


def sweep_fields():

    return [f for f in dataclasses.fields(SweepConfig) if "help" in f.metadata]


@cli.command(epilog=SWEEP_EXAMPLES,
             short_help="search hyperparameters (Optuna): a table and plots")
@click.option("--name", callback=checked_name("sweep"),
              help="sweep name: it lands in OUT_DIR/NAME  [default: MODEL-DATA, numbered if taken]")
@click.option("--model", type=click.Choice(list(MODELS)), help="model family of every trial  [default: mlp; "
                                                               "classifier with --from]")
@click.option("--data", help="corpus, as for train --data  [default: names]")
@click.option("--from", "lm_run", type=click.Path(path_type=Path),
              help="a language-model run every trial finetunes a classifier from, as makemore finetune --from does")
@click.option("--backward", "backward_run", type=click.Path(path_type=Path),
              help="with --from: a language model that reads right to left, every trial's second body (finetune "
                   "--backward)")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUES",
              help="a searched setting (repeat the option; see below)")
@click.option("--space", type=click.Path(dir_okay=False, path_type=Path),
              help="a TOML file with the settings, [params] and [fixed]")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/sweeps"),
              show_default=True, help="folder that holds sweeps")
@click.option("--resume", is_flag=True, help="carry on sweep NAME: finished trials are kept, interrupted ones run "
                                             "again")
@click.option("--report", is_flag=True, help="only write results.csv and the plots of sweep NAME, and print its table")
@click.option("--worker", type=int, hidden=True, help="run trials of sweep NAME in this process, as worker K (started "
                                                      "by sweep)")
@field_options(sweep_fields(), "Sweep options", with_defaults=False)
@field_options(model_fields(), "Model options", with_defaults=False)
@field_options([f for f in dataclasses.fields(DataConfig) if f.name != "data"], "Data options", with_defaults=False)
@field_options(train_fields(), "Training options", with_defaults=False)
@threads_option
def sweep(name, model, data, lm_run, backward_run, params, space, out_dir, resume, report, worker, **options):
    """Search hyperparameters (Optuna): many trials, each an ordinary run; a table and plots of the results."""
    given = {k: v for k, v in options.items() if v is not None}
    config = None  # a new sweep's, checked before torch loads
    if resume or report or worker is not None:
        if not name:
            raise MakemoreError("--resume and --report need --name of the sweep, e.g. --name mlp-names")
        chosen = {"model": model, "data": data, "from": lm_run, "backward": backward_run}
        named = [*given, *(k for k, v in chosen.items() if v is not None)]
        extra = [option_name(k) for k in named if k not in ("storage", "parallel")]
        extra += ["--param"] if params else []
        if extra:
            raise MakemoreError(f"sweep {name} keeps its settings; drop {', '.join(extra)}")
    else:
        config = new_sweep_config(name, model, data, lm_run, backward_run, params, space, out_dir, given)
    from makemore.sweep import Sweep, check_inputs, run_workers, write_report

    if config is None:
        found = Sweep.open(name, out_dir, given.get("storage"))
        if worker is not None:
            return found.work(worker, log=click.echo)
        if report:
            write_report(found, log=click.echo)
            return
        check_inputs(found.cfg)  # on this machine, from this folder: else every trial left would fail, and count
    else:
        found = Sweep.create(config, out_dir)
    if run_workers(found, given.get("parallel", found.cfg.parallel), log=click.echo) == INTERRUPTED:
        write_report(found, log=click.echo)
        err(f"interrupted; carry on with: makemore sweep --name {found.cfg.name} --out-dir {out_dir} --resume")
        return INTERRUPTED
    rows = write_report(found, log=click.echo)
    if rows and all(r["state"] == "fail" for r in rows):
        raise MakemoreError(f"every trial failed (trial {rows[0]['trial']}: {rows[0]['error']}); "
                        "fix the settings and start a new sweep")


def main():
    cli()
