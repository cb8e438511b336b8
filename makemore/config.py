"""Config dataclasses to and from JSON, and the checks their fields share.

Each field carries its help text (and, for a fixed set of values, its choices) in the field's
metadata: the CLI builds its options from them, so a new field is one line in one place.
"""
import codecs
import dataclasses
import math
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from makemore.errors import MakemoreError

THREADS_ENV = "MAKEMORE_THREADS"  # CPU threads (--threads): read by device.use_threads, passed on to sweep workers


def world_size():
    """How many processes train together, as torchrun (or `makemore train --nproc`) says in WORLD_SIZE: 1
    without it. The launcher, the process group and the CPU threads all read it here."""
    value = os.environ.get("WORLD_SIZE", "").strip()
    if not value:
        return 1
    if not value.isdigit() or int(value) < 1:
        raise MakemoreError(f"WORLD_SIZE={value!r} is not a number of processes; start makemore with torchrun, or "
                            "unset WORLD_SIZE")
    return int(value)


def option_name(field_name):
    return "--" + field_name.replace("_", "-")


def check_number(name, value):
    """A setting that must be a number (a --space file can give "20", a config.json anything)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MakemoreError(f"{option_name(name)} must be a number, got {value!r}")


def checked_number(config, name):
    """The config's setting `name`, a number; a whole number where the field is an int (1e4 from a notebook is
    10000; 5.5 steps is refused rather than run as 'step 6/5.5')."""
    value = getattr(config, name)
    check_number(name, value)
    if {f.name: f.type for f in dataclasses.fields(config)}.get(name) is int and isinstance(value, float):
        if not value.is_integer():
            raise MakemoreError(f"{option_name(name)} must be a whole number, got {value}")
        value = int(value)
        setattr(config, name, value)
    return value


def check_positive(config, *names):
    for name in names:
        value = checked_number(config, name)
        if not 0 < value < math.inf:  # not '<= 0', which a nan passes
            raise MakemoreError(f"{option_name(name)} must be positive and finite, got {value}")


def check_non_negative(config, *names):
    for name in names:
        value = checked_number(config, name)
        if not 0 <= value < math.inf:
            raise MakemoreError(f"{option_name(name)} must be zero or more, and finite, got {value}")


def codec_name(encoding):
    """The canonical name of an --encoding ('UTF8' is 'utf-8'), or the error that names a wrong one."""
    try:
        info = codecs.lookup(encoding)
    except LookupError:
        raise MakemoreError(f"unknown encoding '{encoding}'; pass a Python codec name such as utf-8 or "
                            "latin-1") from None
    if not getattr(info, "_is_text_encoding", True):  # base64, rot13, zlib: codecs, but not of text
        raise MakemoreError(f"--encoding {encoding} is not a text encoding; pass one such as utf-8 or latin-1")
    return info.name


SEEDS = 2**63  # torch takes a seed below this


def check_seed(config, *names):
    for name in names:
        value = checked_number(config, name)
        if not 0 <= value < SEEDS:
            raise MakemoreError(f"{option_name(name)} must be a whole number from 0 to {SEEDS - 1}, got {value}")


def check_fraction(config, *names):
    for name in names:
        value = checked_number(config, name)
        if not 0 <= value < 1:
            raise MakemoreError(f"{option_name(name)} must be in [0, 1), got {value}")


def check_choice(config, name):
    choices = {f.name: f for f in dataclasses.fields(config)}[name].metadata["choices"]
    if getattr(config, name) not in choices:
        raise MakemoreError(f"{option_name(name)} must be one of {', '.join(choices)}, got {getattr(config, name)!r}")


def from_dict(cls, values, what):
    """A dataclass from stored JSON values; unknown keys mean a file from another version."""
    if not isinstance(values, dict):
        raise MakemoreError(f"{what} in config.json is not an object; the run directory is damaged")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise MakemoreError(f"{what} in config.json has unknown fields {sorted(unknown)}; the run is from another "
                            "version of makemore")
    try:
        return cls(**values)
    except TypeError as e:
        raise MakemoreError(f"{what} in config.json is invalid ({e}); the run directory is damaged") from None


@dataclass
class DataConfig:
    data: str = field(default="names", metadata={"help": "a text file or folder, hf:<dataset>[:<config>], or a corpus "
                                                         "name: names, names-sex (labeled), glosses (labeled), "
                                                         "glosses-text, shakespeare, surnames (labeled)"})
    kind: str = field(default="auto", metadata={"help": "lines (one item per line), stream (prose), labeled "
                                                        "(label<TAB>item lines or a folder of <label>.txt), or auto "
                                                        "(guess and say "
                                                        "so)", "choices": ["auto", "lines", "stream", "labeled"]})
    encoding: str = field(default="utf-8", metadata={"help": "text encoding of local files, e.g. latin-1"})
    text_column: str = field(default="text", metadata={"help": "column that holds the text in a Hugging Face dataset"})
    val_frac: float = field(default=0.1, metadata={"help": "share of the corpus held out for validation"})
    test_frac: float = field(default=0.1, metadata={"help": "share of the corpus held out for the final test"})
    split_seed: int = field(default=42, metadata={"help": "seed of the train/val/test split (kept apart from the "
                                                          "training seed)"})
    seq_len: int = field(default=128, metadata={"help": "stream corpora: characters predicted per training sequence"})
    label_column: str = field(default="label",
                              metadata={"help": "column that holds the label in a Hugging Face dataset (classifiers)"})
    max_item_len: int = field(default=1000, metadata={"help": "classifiers: an item longer than this many characters "
                                                             "trains on its first that many, and is scored in "
                                                             "pieces of that length, its label probabilities "
                                                             "averaged over them"})
    label_frac: float = field(default=1.0, metadata={"help": "classifiers: share of the train split's labels to train "
                                                             "on, picked per label (the rest go unused)"})
    label_seed: int = field(default=0, metadata={"help": "classifiers: seed that picks the labels of --label-frac"})
    reverse: bool = field(default=False, metadata={"help": "language models: read each item (or the prose) right to "
                                                           "left; a backward model's body gives a classifier a second "
                                                           "direction (finetune --backward)"})
    min_char_count: int = field(default=0, metadata={"help": "characters seen fewer times than this in the train "
                                                             "split share one unknown-character id, as do characters "
                                                             "the run meets later (eval --data, classify, --prefix); "
                                                             "0: every character of the data has its own id and a new "
                                                             "one is an error"})

    def __post_init__(self):
        check_choice(self, "kind")
        check_positive(self, "seq_len", "max_item_len")
        check_non_negative(self, "min_char_count")
        check_fraction(self, "val_frac", "test_frac")
        check_seed(self, "split_seed", "label_seed")
        codec_name(self.encoding)
        if self.val_frac == 0:
            raise MakemoreError("--val-frac must be above 0: training keeps the model with the best loss on the val "
                                "split; pass e.g. --val-frac 0.1")
        if self.val_frac + self.test_frac >= 1:
            raise MakemoreError(f"--val-frac + --test-frac must be below 1 to leave a train split, got "
                                f"{self.val_frac} + {self.test_frac}; pass smaller shares, e.g. 0.1 each")
        if not 0 < self.label_frac <= 1:
            raise MakemoreError(f"--label-frac must be in (0, 1], got {self.label_frac}")


@dataclass
class TrainConfig:
    max_steps: int = field(default=30000, metadata={"help": "optimizer steps in all (0: only what the model fits "
                                                            "before training, e.g. bigram counts)"})
    max_time: str = field(default="", metadata={"help": "a time budget of training (e.g. 90s, 3m, 1.5h; validation "
                                                        "not counted): the run ends at it or at --max-steps, whichever "
                                                        "comes first, and the learning rate decays over whichever "
                                                        "runs out first"})
    batch_size: int = field(default=64, metadata={"help": "items (lines) or sequences (stream) per step"})
    lr: float = field(default=1e-2, metadata={"help": "peak learning rate of AdamW"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay of weight matrices and embeddings"})
    warmup_steps: int = field(default=300, metadata={"help": "steps of linear learning-rate warmup (at most half of "
                                                             "--max-steps)"})
    min_lr_frac: float = field(default=0.02, metadata={"help": "the cosine decay ends at this share of --lr"})
    grad_clip: float = field(default=1.0, metadata={"help": "clip the gradient norm to this (0: no clipping)"})
    eval_interval: int = field(default=2000, metadata={"help": "steps between validations on the whole val split"})
    eval_batch_size: int = field(default=1024, metadata={"help": "items or sequences per batch when evaluating"})
    patience: int = field(default=0, metadata={"help": "stop after this many validations without a better loss (0: "
                                                       "never)"})
    seed: int = field(default=1337, metadata={"help": "seed of initialisation, batches and dropout"})
    device: str = field(default="auto", metadata={"help": "auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps"})
    precision: str = field(default="auto", metadata={"help": "auto (bf16 autocast on CUDA, else fp32), fp32 or "
                                                             "bf16", "choices": ["auto", "fp32", "bf16"]})
    log_interval: int = field(default=100, metadata={"help": "steps between progress-bar and TensorBoard updates"})
    ema: float = field(default=0.0, metadata={"help": "decay of an exponential moving average of the weights (e.g. "
                                                      "0.999), which is validated, kept and used in place of the "
                                                      "weights (0: off)"})
    input_noise: float = field(default=0.0, metadata={"help": "share of input characters replaced at random while "
                                                              "training, drawn by their frequency in the train split; "
                                                              "the targets stay (Xie et al. 2017; 0: off)"})
    carry_state: bool = field(default=False, metadata={"help": "recurrent models on prose: each batch row reads the "
                                                               "window after its last one and starts from its final "
                                                               "state (truncated BPTT)"})

    def __post_init__(self):
        if isinstance(self.max_time, (int, float)) and not isinstance(self.max_time, bool):  # seconds, from Python
            self.max_time = f"{self.max_time:g}s"
        seconds_of(self.max_time)  # a budget that does not read is told now
        check_positive(self, "batch_size", "lr", "eval_interval", "eval_batch_size", "log_interval")
        check_non_negative(self, "max_steps", "weight_decay", "warmup_steps", "min_lr_frac", "grad_clip", "patience")
        check_choice(self, "precision")
        check_seed(self, "seed")
        check_fraction(self, "ema", "input_noise")
        if not self.min_lr_frac <= 1:
            raise MakemoreError("--min-lr-frac must be at most 1 (the rate ends at that share of --lr), got "
                                f"{self.min_lr_frac}")

    @property
    def max_seconds(self):
        """--max-time in seconds, or None."""
        return seconds_of(self.max_time)


def usable_cpus():
    """The CPUs this process may run on: its affinity, capped by a container's CPU quota (cgroup v2)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cpus


def check_threads(threads, name="--threads "):
    """threads, a count of CPU threads asked for as `name` (--threads or MAKEMORE_THREADS=), if the CPUs this
    process may use can run them: thousands of threads crowd the machine out (other programs fail to start a
    thread), and more still crash torch."""
    cpus = usable_cpus()
    if threads > cpus:
        raise MakemoreError(f"{name}{threads} is more threads than the {cpus} CPU(s) this process may use; pass "
                            f"{cpus} or fewer (or leave it out: makemore picks the CPUs that are free)")
    return threads


DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600}


def seconds_of(text, option="--max-time"):
    """A duration given as 90, 90s, 3m or 1.5h, in seconds; "" is None (no budget)."""
    if text in ("", None):
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([smh]?)\s*", str(text).lower())
    seconds = float(match.group(1)) * DURATION_UNITS[match.group(2)] if match else math.nan
    if not 0 < seconds < math.inf:
        raise MakemoreError(f"{option} {text!r} is not a time to train for; pass e.g. 90s, 3m or 1.5h")
    return seconds


def default_run_name(out_dir, model, data, suffix=""):
    """MODEL-DATA, numbered if OUT_DIR/NAME (with suffix: a file of that name) is taken."""
    stem = Path(data.removeprefix("hf:").replace(":", "-")).stem or "data"
    base = f"{model}-{stem}"
    name, k = base, 1
    while os.path.lexists(out_dir / f"{name}{suffix}"):  # a link is taken, even one that leads nowhere
        k += 1
        name = f"{base}-{k}"
    return name


def check_name(name, what="run"):
    """A run's, sweep's or lr-find curve's name: one folder (or file) name under --out-dir, so that makemore
    never writes outside the folder the user gave it."""
    if (not name.strip() or name in (".", "..") or "/" in name or "\\" in name
            or any(unicodedata.category(ch).startswith("C") for ch in name)):
        raise MakemoreError(f"--name {name!r} is not a {what} name: give one folder name, with no / or \\, no control "
                            f"characters, and not . or .. (the {what} goes into --out-dir), e.g. --name mlp-names")
    return name


SMALL_FILE_BYTES = 1 << 20  # a config, a sweep's space or a run's JSON file is at most this large


def read_small(path, what):
    """The text of a small file that makemore reads whole (a --space file, a run's config.json, ...): a regular
    file of at most SMALL_FILE_BYTES, in UTF-8; else one line that says why it cannot be read."""
    path = Path(path)
    try:
        if not path.is_file():
            raise MakemoreError(f"{what} {path} is missing or not a regular file")
        if path.stat().st_size > SMALL_FILE_BYTES:
            raise MakemoreError(f"{what} {path} is larger than {SMALL_FILE_BYTES >> 20} MB, far more than such a file "
                                "holds; pass the right file")
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise MakemoreError(f"cannot read {what} {path} ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise MakemoreError(f"{what} {path} is not UTF-8 text; pass the right file") from None
