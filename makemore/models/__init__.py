"""The model registry: name -> config dataclass, model class, the config fields the name fixes, and
the training defaults that suit the model (a function of its config)."""
import dataclasses
from collections.abc import Callable
from typing import NamedTuple

from makemore.config import option_name
from makemore.errors import MakemoreError
from makemore.models.bigram import Bigram, BigramConfig
from makemore.models.classifier import Classifier, ClassifierConfig
from makemore.models.mlp import MLP, MLPConfig, WaveNet, WaveNetConfig
from makemore.models.recurrent import RecurrentConfig, RecurrentLM
from makemore.models.transformer import Transformer, TransformerConfig


def no_defaults(config):
    return {}


def bigram_defaults(config):
    # counts are exact: nothing to train; the one-layer net needs steps, a high rate and no decay
    if config.fit == "counts":
        return {"max_steps": 0}
    return {"max_steps": 3000, "lr": 0.1, "weight_decay": 0.0, "eval_interval": 500}


def wavenet_defaults(config):
    # measured on the shared names: val 1.9877 in 30,000 steps (lr 1e-2 without dropout overfit near 2.08)
    return {"lr": 5e-3, "weight_decay": 0.05}


def recurrent_defaults(config):
    return {"lr": 3e-3, "max_steps": 6000, "eval_interval": 1000}


def transformer_defaults(config):
    # measured on the shared names: without dropout val rose from step 7,000 (best 2.015); 64 wide with
    # dropout 0.2 and weight decay 0.1: 1.9587 in 20,000 steps, 1.9293 in 40,000; 128 wide, dropout 0.25: 1.9390 in 20,000;
    # lr 1e-3 / 2e-3 / 3e-3 / 4e-3 / 5e-3 over 40,000 steps: 1.9436 / 1.9293 / 1.9243 / 1.9295 / 1.9267 (one seed each);
    # at lr 3e-3, seeds 1337 / 1 / 2: 1.9243 / 1.9300 / 1.9242; dropout 0.15: 1.9281; 60,000 steps: 1.9333
    # weight decay 0.03: 1.9310; 6 layers: 1.9334 (overfits); 8 heads: 1.9247; batch 32 for 80,000 steps at 2e-3: 1.9294
    # --input-noise 0.05 with dropout 0.1, seeds 1337 / 1 / 2: 1.9233 / 1.9293 / 1.9307 (no clear gain; noise 0.1: 1.9430)
    return {"lr": 3e-3, "max_steps": 40000, "eval_interval": 2000, "weight_decay": 0.1}


def classifier_defaults(config):
    # items are short: an epoch of the surnames' train split is about 225 steps of 64
    return {"lr": 3e-3, "max_steps": 3000, "eval_interval": 250}


class ModelSpec(NamedTuple):
    config: type
    model: type
    fixed: dict = {}  # noqa: RUF012 - read only; config fields set by the model's name, e.g. the cell of an LSTM
    train_defaults: Callable = no_defaults  # TrainConfig fields that suit this model, from its config


MODELS = {
    "bigram": ModelSpec(BigramConfig, Bigram, train_defaults=bigram_defaults),
    "mlp": ModelSpec(MLPConfig, MLP),
    "wavenet": ModelSpec(WaveNetConfig, WaveNet, train_defaults=wavenet_defaults),
    "lstm": ModelSpec(RecurrentConfig, RecurrentLM, {"cell": "lstm"}, recurrent_defaults),
    "gru": ModelSpec(RecurrentConfig, RecurrentLM, {"cell": "gru"}, recurrent_defaults),
    "rnn": ModelSpec(RecurrentConfig, RecurrentLM, {"cell": "rnn"}, recurrent_defaults),
    "transformer": ModelSpec(TransformerConfig, Transformer, train_defaults=transformer_defaults),
    "classifier": ModelSpec(ClassifierConfig, Classifier, train_defaults=classifier_defaults),
}
LANGUAGE_MODELS = [name for name, spec in MODELS.items() if spec.model.task == "lm"]


def model_config(name, **overrides):
    """The named model's config with its defaults, updated with the given fields. A field the model
    does not have is an error (a user's --n-head on an MLP would otherwise do nothing, unseen)."""
    if name not in MODELS:
        raise MakemoreError(f"unknown model '{name}'; pass --model with one of: {', '.join(MODELS)}")
    spec = MODELS[name]
    if hasattr(spec.config, "from_options"):  # a config that passes options on, e.g. to a classifier's body
        return spec.config.from_options(**{**overrides, **spec.fixed})
    fields = dataclasses.fields(spec.config)
    unknown = [k for k in overrides if k not in {f.name for f in fields}]
    if unknown:
        takes = ", ".join(option_name(f.name) for f in fields if "help" in f.metadata and f.name not in spec.fixed)
        raise MakemoreError(f"the {name} model has no {', '.join(map(option_name, unknown))}: drop it ({name} takes {takes})")
    return spec.config(**{**overrides, **spec.fixed})


def build_model(name, config):
    return MODELS[name].model(config)
