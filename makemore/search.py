"""What a sweep searches: its settings (SweepConfig), a --param's values (Param) and a --space file.

Free of torch and Optuna, so the command line lists and checks a sweep's options at once; sweep.py
runs the trials.
"""
import dataclasses
import os
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib  # novermin: 3.11+; 3.10 takes the same parser from the tomli package
except ModuleNotFoundError:
    import tomli as tomllib

from makemore.config import (
    DataConfig,
    TrainConfig,
    check_choice,
    check_name,
    check_positive,
    check_seed,
    default_run_name,
    option_name,
    read_small,
)
from makemore.data import resolve
from makemore.errors import MakemoreError
from makemore.models import FINETUNED, MODELS

SAMPLERS = ["tpe", "random", "grid"]
PRUNERS = ["median", "halving", "none"]


@dataclass
class Param:
    """One searched hyperparameter: a list of choices, or an int / float range (optionally log-scaled)."""

    name: str
    choices: list | None = None
    low: float | None = None
    high: float | None = None
    integer: bool = False
    log: bool = False

    def suggest(self, trial):
        if self.choices is not None:
            return trial.suggest_categorical(self.name, self.choices)
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)

    def grid(self):
        """The values a grid search visits."""
        if self.choices is not None:
            return self.choices
        if self.integer and not self.log:
            return list(range(int(self.low), int(self.high) + 1))
        raise MakemoreError(f"--sampler grid needs a list of values for {self.name}, e.g. {self.name}=1e-3,3e-3,1e-2")

    def describe(self):
        if self.choices is not None:
            return ",".join(map(str, self.choices))
        if self.integer and not self.log:
            return f"{int(self.low)}..{int(self.high)}"
        return f"{'log' if self.log else 'int' if self.integer else 'float'}:{self.low:g}:{self.high:g}"


def parse_value(text):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def parse_param(name, spec):
    """`a,b,c` (choices), `lo..hi` (integers if both ends are, else floats), `log:lo:hi`, `float:lo:hi`,
    `int:lo:hi`, `intlog:lo:hi`, or one value."""
    if isinstance(spec, list):
        return Param(name, choices=[parse_value(str(v)) if isinstance(v, str) else v for v in spec])
    spec = str(spec).strip()
    fix = f"write it as {name}=a,b,c or {name}=3..8 or {name}=0.1..0.5 or {name}=log:1e-4:1e-2"
    try:
        if ".." in spec and ":" not in spec:
            ends = spec.split("..")
            integer = all(v.strip().lstrip("-").isdigit() for v in ends)
            low, high = ((int if integer else float)(v) for v in ends)
            param = Param(name, low=low, high=high, integer=integer)
        elif ":" in spec:
            kind, low, high = spec.split(":")
            if kind not in ("log", "float", "int", "intlog"):
                raise ValueError
            param = Param(name, low=float(low), high=float(high), integer=kind.startswith("int"), log="log" in kind)
        else:
            return Param(name, choices=[parse_value(v.strip()) for v in spec.split(",") if v.strip()])
    except ValueError:
        raise MakemoreError(f"cannot read the range of {name} from '{spec}'; {fix}") from None
    if not param.low < param.high:  # nan too
        raise MakemoreError(f"the range of {name} is empty ({spec}): the low end must be below the high end")
    if param.log and param.low <= 0:
        raise MakemoreError(f"a log range needs positive ends, got {name}={spec}")
    return param


@dataclass
class SweepConfig:
    name: str
    model: str = "mlp"
    data: str = "names"
    trials: int = field(default=24, metadata={"help": "trials in all (a grid stops at its size)"})
    parallel: int = field(default=1, metadata={"help": "trials at once on this machine (worker processes sharing its "
                                                       "GPU or cores)"})
    sampler: str = field(default="tpe", metadata={"help": "how trials pick values: tpe (model-based), random or "
                                                          "grid", "choices": SAMPLERS})
    pruner: str = field(default="median", metadata={"help": "stop poor trials early from their validation losses: "
                                                            "median rule, successive halving, or "
                                                            "none", "choices": PRUNERS})
    sampler_seed: int = field(default=0, metadata={"help": "seed of the sampler (every trial trains with the same "
                                                           "--seed)"})
    storage: str = field(default=None, metadata={"help": "study store that several machines share: a database URL, "
                                                         "without its password (set MAKEMORE_STORAGE_PASSWORD), or "
                                                         "journal:PATH, a file on a shared filesystem  "
                                                         "[default: sqlite in the sweep folder]"})
    params: dict = field(default_factory=dict)  # name -> spec string or list
    fixed: dict = field(default_factory=dict)  # other config fields, the same for every trial
    pretrained: str = None  # a language-model run every trial finetunes a classifier from (--from)
    backward: str = None  # a right-to-left language-model run: every trial's second body (--backward)

    def __post_init__(self):
        check_name(self.name, "sweep")
        check_storage(self.storage)
        self.storage = stored_url(self.storage)
        check_positive(self, "trials", "parallel")
        check_seed(self, "sampler_seed")
        check_choice(self, "sampler")
        check_choice(self, "pruner")
        if not self.params:
            raise MakemoreError("the sweep searches nothing; give --param NAME=VALUES (e.g. --param lr=log:1e-4:3e-2) "
                                "or --space FILE")
        both = [k for k in self.params if k in self.fixed]
        if both:
            raise MakemoreError(f"{', '.join(both)} is both searched and fixed; search it (--param) or fix it "
                                f"({', '.join(option_name(k) for k in both)}), not both")
        space = self.space()  # parse now, so a bad spec fails before anything starts
        if self.sampler == "grid":
            [p.grid() for p in space]
        known = config_fields(self.model, self.fixed.get("encoder"))
        unknown = [k for k in [*self.params, *self.fixed] if k not in known]
        if self.backward and not self.pretrained:
            raise MakemoreError(f"--backward {self.backward} is the second body of classifiers finetuned from a "
                                "language model; pass --from with the left-to-right one too")
        if self.pretrained:
            if self.model != FINETUNED:
                raise MakemoreError(f"--from finetunes a classifier, so its trials cannot be {self.model} models; drop "
                                    f"--model {self.model}")
            if "bidirectional" in [*self.params, *self.fixed]:
                raise MakemoreError("a finetuned classifier reads both ways when --backward gives it a right-to-left "
                                    "language model: drop --bidirectional")
            body = [k for k in [*self.params, *self.fixed] if k not in config_fields(FINETUNED, body=False)]
            if body and not unknown:
                raise MakemoreError(f"the body comes from --from {self.pretrained}, so its options are set there: "
                                    f"drop {', '.join(map(option_name, body))}")
        if unknown:
            raise MakemoreError(f"model {self.model} has no setting {', '.join(unknown)}; "
                                f"searchable: {', '.join(sorted(known))}")

    def space(self):
        return [parse_param(k, v) for k, v in self.params.items()]


PASSWORD_ENV = "MAKEMORE_STORAGE_PASSWORD"  # the study store's password: never in a URL, sweep.json or `ps`


JOURNAL = "journal:"  # --storage journal:PATH, Optuna's journal file on a filesystem that machines share


def stored_url(url):
    """A --storage URL as a sweep records it: a journal's path made absolute, so workers in any folder share it."""
    if url and url.startswith(JOURNAL):
        return JOURNAL + os.path.abspath(url.removeprefix(JOURNAL))
    return url


def check_storage(url):
    """A --storage URL must not hold a password: it would show on worker command lines (`ps`), in logs and in
    sweep.json. The password comes from PASSWORD_ENV (or the database's own means, e.g. PostgreSQL's ~/.pgpass)."""
    parts = urllib.parse.urlsplit(url or "")
    if parts.password is not None:
        user = parts.username or ""
        shown = url.replace(f"{user}:{parts.password}@", f"{user}@", 1)
        raise MakemoreError(f"--storage holds a password, which would show in `ps`, in logs and in sweep.json; pass "
                            f"--storage {shown} and set {PASSWORD_ENV} (or use the database's own password file)")


def config_fields(model, encoder=None, body=True):
    """Every field a trial may set: the model's config (a classifier's and, with body, its body's),
    the data config and the train config."""
    if model not in MODELS:
        raise MakemoreError(f"unknown model '{model}'; pass --model with one of: {', '.join(MODELS)}")
    spec = MODELS[model]
    names = {f.name for cls in (spec.config, TrainConfig) for f in dataclasses.fields(cls)}
    names |= {f.name for f in dataclasses.fields(DataConfig)} - {"data"}
    if hasattr(spec.config, "from_options") and body:  # options a classifier does not have configure its body
        default = next(f.default for f in dataclasses.fields(spec.config) if f.name == "encoder")
        names |= config_fields(encoder or default)
    elif hasattr(spec.config, "from_options"):  # the body, and which model it is, come from a pretrained run
        names -= {"encoder"}
    return names - {"vocab_size", *spec.fixed}


def read_space_file(path):
    """A TOML sweep file: top-level settings, a [params] table and an optional [fixed] table."""
    if not Path(path).exists():
        raise MakemoreError(f"no sweep file at {path}; pass --space with a TOML file (see sweeps/mlp.toml)")
    try:
        raw = tomllib.loads(read_small(path, "--space file"))
    except tomllib.TOMLDecodeError as e:
        raise MakemoreError(f"{path} is not valid TOML ({e}); see sweeps/mlp.toml for the layout") from None
    allowed = {f.name for f in dataclasses.fields(SweepConfig)}
    unknown = [k for k in raw if k not in allowed]
    if unknown:
        raise MakemoreError(f"{path}: unknown setting(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    return raw


def new_sweep_config(name, model, data, lm_run, backward_run, params, space, out_dir, given):
    """A new sweep's settings: the --space file, then the options given on the command line."""
    sweep_keys = {f.name for f in dataclasses.fields(SweepConfig) if "help" in f.metadata}
    settings = read_space_file(space) if space else {}
    for key, value in (("model", model), ("data", data), ("pretrained", lm_run and str(lm_run)),
                       ("backward", backward_run and str(backward_run))):
        if value is not None:
            settings[key] = value
    settings.setdefault("model", FINETUNED if settings.get("pretrained") else "mlp")
    settings.setdefault("data", "names")
    # as a run records it: a local path made absolute, so that the sweep reads it again from any folder
    settings["data"] = resolve(DataConfig(data=str(settings["data"]))).data
    settings.update({k: v for k, v in given.items() if k in sweep_keys})
    fixed = {k: v for k, v in given.items() if k not in sweep_keys}
    searched = {}
    for item in params:
        key, eq, spec = item.partition("=")
        key = key.strip().replace("-", "_")
        if not eq or not key or not spec.strip():
            raise MakemoreError(f"--param takes NAME=VALUES, e.g. lr=log:1e-4:3e-2; got '{item}'")
        if key in searched:
            raise MakemoreError(f"--param {key} is given twice ({searched[key]} and {spec.strip()}); keep one")
        searched[key] = spec.strip()
    named = {*searched, *fixed}  # a setting named on the command line, searched or fixed, replaces the file's
    for part, mine in (("params", searched), ("fixed", fixed)):
        mine.update({k: v for k, v in settings.get(part, {}).items() if k not in named})
    settings.update(params=searched, fixed=fixed)
    settings["name"] = name or settings.get("name") or default_run_name(out_dir, settings["model"], settings["data"])
    return SweepConfig(**settings)
