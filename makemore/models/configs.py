"""Every model's config: what its options are, their defaults and help, and the checks on their values.

Kept apart from the models themselves and free of torch, so the command line can list and check
options without loading torch (`makemore --help` answers at once); each model module imports its
config from here.
"""
import dataclasses
import math
from dataclasses import dataclass, field

from makemore.config import check_choice, check_fraction, check_non_negative, check_positive
from makemore.errors import MakemoreError

POOLINGS = ["last", "mean", "max", "concat"]  # concat: last, max and mean side by side (ULMFiT's concat pooling)


@dataclass
class BigramConfig:
    vocab_size: int = 0  # filled from the tokenizer
    fit: str = field(default="counts", metadata={"help": "bigram: counts (exact, smoothed) or gradient (a one-layer "
                                                         "net)", "choices": ["counts", "gradient"]})
    smoothing: float = field(default=1.0, metadata={"help": "bigram: add-k smoothing of the counts"})

    def __post_init__(self):
        check_choice(self, "fit")
        if not 0 < self.smoothing < math.inf:  # nan too
            raise MakemoreError(f"--smoothing must be above 0 and finite, got {self.smoothing}: at 0 a pair never seen "
                                "in training has probability 0 (an infinite loss), at inf every pair is equally "
                                "likely; pass e.g. 1 (the default) or 0.1")


@dataclass
class MLPConfig:
    vocab_size: int = 0  # filled from the tokenizer
    block_size: int = field(default=3, metadata={"help": "characters of context each prediction reads"})
    n_embd: int = field(default=24, metadata={"help": "embedding size of a character"})
    n_hidden: int = field(default=256, metadata={"help": "units in a hidden layer"})
    n_layer: int = field(default=1, metadata={"help": "number of hidden layers"})
    norm: str = field(default="none", metadata={"help": "normalisation before each tanh: none, batch or "
                                                        "layer", "choices": ["none", "batch", "layer"]})
    dropout: float = field(default=0.0, metadata={"help": "dropout after each hidden layer"})

    def __post_init__(self):
        check_positive(self, "block_size", "n_embd", "n_hidden", "n_layer")
        check_choice(self, "norm")
        check_fraction(self, "dropout")


@dataclass
class WaveNetConfig:
    vocab_size: int = 0  # filled from the tokenizer
    block_size: int = field(default=8, metadata={"help": "characters of context each prediction reads"})
    n_embd: int = field(default=24, metadata={"help": "embedding size of a character"})
    n_hidden: int = field(default=128, metadata={"help": "units in a hidden layer"})
    norm: str = field(default="batch", metadata={"help": "normalisation before each tanh: none, batch or "
                                                         "layer", "choices": ["none", "batch", "layer"]})
    dropout: float = field(default=0.15, metadata={"help": "dropout after each hidden layer"})

    def __post_init__(self):
        check_positive(self, "block_size", "n_embd", "n_hidden")
        if self.block_size < 2 or self.block_size & (self.block_size - 1):
            raise MakemoreError("wavenet merges characters in pairs: --block-size must be a power of two from 2, got "
                                f"{self.block_size}")
        check_choice(self, "norm")
        check_fraction(self, "dropout")


@dataclass
class RecurrentConfig:
    vocab_size: int = 0  # filled from the tokenizer
    cell: str = field(default="lstm", metadata={"choices": ["lstm", "gru", "rnn"]})  # set by --model lstm / gru / rnn
    n_embd: int = field(default=64, metadata={"help": "embedding size of a character"})
    n_hidden: int = field(default=256, metadata={"help": "units in a hidden layer"})
    n_layer: int = field(default=2, metadata={"help": "number of hidden layers"})
    dropout: float = field(default=0.35, metadata={"help": "dropout after each hidden layer"})
    tie_weights: bool = field(default=False, metadata={"help": "share the input embedding with the output layer "
                                                               "(needs n_embd = n_hidden)"})

    def __post_init__(self):
        check_positive(self, "n_embd", "n_hidden", "n_layer")
        check_choice(self, "cell")
        check_fraction(self, "dropout")
        if self.tie_weights and self.n_embd != self.n_hidden:
            raise MakemoreError(f"--tie-weights needs --n-embd equal to --n-hidden, got {self.n_embd} and "
                                f"{self.n_hidden}")


@dataclass
class TransformerConfig:
    vocab_size: int = 0  # filled from the tokenizer
    block_size: int = field(default=32, metadata={"help": "characters of context each prediction reads"})
    n_layer: int = field(default=4, metadata={"help": "number of hidden layers"})
    n_head: int = field(default=4, metadata={"help": "transformer: attention heads per layer"})
    n_embd: int = field(default=64, metadata={"help": "embedding size of a character"})
    dropout: float = field(default=0.2, metadata={"help": "dropout after each hidden layer"})

    def __post_init__(self):
        check_positive(self, "block_size", "n_layer", "n_head", "n_embd")
        check_fraction(self, "dropout")
        if self.n_embd % self.n_head:
            raise MakemoreError(f"--n-embd ({self.n_embd}) must be a multiple of --n-head ({self.n_head})")


@dataclass
class ClassifierConfig:
    encoder: str = field(default="lstm", metadata={"help": "classifier: the language model whose body reads the item "
                                                           "(a --model name)"})
    encoder_config: dict = field(default_factory=dict)  # the body's model config; filled by from_options or --from
    labels: list = field(default_factory=list)  # label names, filled from the labeled data
    pooling: str = field(default="concat", metadata={"help": "classifier: features of the item's last position, their "
                                                             "mean or max over the item, or all three side by "
                                                             "side", "choices": POOLINGS})
    head_dropout: float = field(default=0.0, metadata={"help": "classifier: dropout on the pooled features, before "
                                                               "the head"})
    balance: str = field(default="none", metadata={"help": "classifier: against unequal classes, weight the loss by "
                                                           "inverse class frequency or sample classes "
                                                           "equally", "choices": ["none", "loss", "sampling"]})
    freeze_steps: int = field(default=0, metadata={"help": "classifier: steps for which only the head learns; the "
                                                           "body then unfreezes (see --unfreeze)"})
    unfreeze: str = field(default="all", metadata={"help": "classifier: after --freeze-steps, unfreeze the body at "
                                                           "once, or gradually from its top over as many steps "
                                                           "again", "choices": ["all", "gradual"]})
    body_lr_mult: float = field(default=1.0, metadata={"help": "classifier: the body's learning rate as a share of "
                                                               "--lr (discriminative finetuning)"})
    bidirectional: bool = field(default=False, metadata={"help": "classifier: a second body reads each item right to "
                                                                 "left; the head reads both bodies' pooled features"})
    pretrained: str = ""  # the language-model run the body came from, for the record
    pretrained_backward: str = ""  # the backward language-model run (--reverse) the second body came from

    @property
    def n_classes(self):
        return len(self.labels)

    def __post_init__(self):
        check_choice(self, "pooling")
        check_choice(self, "balance")
        check_choice(self, "unfreeze")
        check_non_negative(self, "freeze_steps")
        check_fraction(self, "head_dropout")
        check_positive(self, "body_lr_mult")

    @classmethod
    def from_options(cls, **options):
        """The classifier's own fields from options; the rest configure the body (e.g. --n-hidden),
        unless the body's config is given whole (a pretrained body's)."""
        own = {f.name for f in dataclasses.fields(cls)}
        fields = {k: v for k, v in options.items() if k in own}
        fields.setdefault("encoder_config", {k: v for k, v in options.items() if k not in own})
        return cls(**fields)


@dataclass
class CustomConfig:
    """What a run records of a model of the user's own: its class, for the message that asks for it
    again, and its size; the weights are in the checkpoints."""
    name: str = ""  # the class's qualified name
    module: str = ""  # the module that defined it ("__main__" for a notebook)
    parameters: int = 0
