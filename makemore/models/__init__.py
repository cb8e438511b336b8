"""The model registry: name -> config dataclass, model class, the config fields the name fixes, and
the training defaults that suit the model (a function of its config).

The registry and the configs (models/configs.py) do not import torch; a model's module is imported
when the first model is built, so the command line lists and checks options without torch.
"""
import copy
import dataclasses
import importlib
from collections.abc import Callable
from typing import NamedTuple

from makemore.config import from_dict, option_name
from makemore.errors import MakemoreError
from makemore.models.configs import (
    BigramConfig,
    ClassifierConfig,
    CustomConfig,
    MLPConfig,
    RecurrentConfig,
    TransformerConfig,
    WaveNetConfig,
)


def no_defaults(config):
    return {}


def bigram_defaults(config):
    # counts are exact: nothing to train; the one-layer net needs steps, a high rate and no decay
    if config.fit == "counts":
        return {"max_steps": 0}
    return {"max_steps": 3000, "lr": 0.1, "weight_decay": 0.0, "eval_interval": 500}


def wavenet_defaults(config):
    return {"lr": 5e-3, "weight_decay": 0.05}  # docs/models.md: how these were chosen


def recurrent_defaults(config):
    return {"lr": 3e-3, "max_steps": 6000, "eval_interval": 1000}


def transformer_defaults(config):
    return {"lr": 3e-3, "max_steps": 40000, "eval_interval": 2000, "weight_decay": 0.1}  # docs/models.md


def classifier_defaults(config):
    # items are short: an epoch of the surnames' train split is about 225 steps of 64
    return {"lr": 3e-3, "max_steps": 3000, "eval_interval": 250}


class ModelSpec(NamedTuple):
    config: type
    model: str  # "module:Class" in makemore.models (see model_class)
    fixed: dict = {}  # noqa: RUF012 - read only; config fields set by the model's name, e.g. the cell of an LSTM
    train_defaults: Callable = no_defaults  # TrainConfig fields that suit this model, from its config
    task: str = "lm"  # what the model does: "lm" (next characters) or "classify" (a label per item); see tasks.py
    build: Callable = None  # the model of a config, when the class alone cannot make it
    complete: Callable = None  # a built config checked against the registry and completed (a classifier's body)


MODELS = {
    "bigram": ModelSpec(BigramConfig, "bigram:Bigram", train_defaults=bigram_defaults),
    "mlp": ModelSpec(MLPConfig, "mlp:MLP"),
    "wavenet": ModelSpec(WaveNetConfig, "mlp:WaveNet", train_defaults=wavenet_defaults),
    "lstm": ModelSpec(RecurrentConfig, "recurrent:RecurrentLM", {"cell": "lstm"}, recurrent_defaults),
    "gru": ModelSpec(RecurrentConfig, "recurrent:RecurrentLM", {"cell": "gru"}, recurrent_defaults),
    "rnn": ModelSpec(RecurrentConfig, "recurrent:RecurrentLM", {"cell": "rnn"}, recurrent_defaults),
    "transformer": ModelSpec(TransformerConfig, "transformer:Transformer", train_defaults=transformer_defaults),
}
LANGUAGE_MODELS = list(MODELS)
FINETUNED = "classifier"  # the model of a run finetuned --from a language model (makemore finetune)


def body_config(config):
    """A classifier's config, its --encoder checked and the body's config completed (stored whole, so
    that the run is rebuilt exactly). A body of the user's own (CUSTOM) is kept as it was recorded."""
    if config.encoder == CUSTOM:
        return config
    if config.encoder not in LANGUAGE_MODELS:
        raise MakemoreError(f"--encoder must be a language model: one of {', '.join(LANGUAGE_MODELS)}, got "
                            f"{config.encoder!r}")
    try:
        body = model_config(config.encoder, **config.encoder_config)
    except MakemoreError as e:
        raise MakemoreError(f"the classifier's body (--encoder {config.encoder}): {e}") from None
    return dataclasses.replace(config, encoder_config=dataclasses.asdict(body))


def build_classifier(config, module=None):
    """A classifier whose bodies the registry builds, or copies of module, a body of the user's own."""
    Classifier = model_class(MODELS[FINETUNED].model)
    if config.encoder == CUSTOM:
        body = build_model(CUSTOM, CustomConfig(**config.encoder_config), module)
        return Classifier(config, lambda: copy.deepcopy(body))
    body_config = model_config(config.encoder, **config.encoder_config)
    return Classifier(config, lambda: build_model(config.encoder, body_config))


MODELS["classifier"] = ModelSpec(ClassifierConfig, "classifier:Classifier", train_defaults=classifier_defaults,
                                 task="classify", build=build_classifier, complete=body_config)


CUSTOM = "custom"  # the name a run records for a model of the user's own (an nn.Module passed to makemore.train)


def model_config(name, **overrides):
    """The named model's config with its defaults, updated with the given fields. A field the model
    does not have is an error (a user's --n-head on an MLP would otherwise do nothing, unseen)."""
    if name not in MODELS:
        raise MakemoreError(f"unknown model '{name}'; pass --model with one of: {', '.join(MODELS)}")
    spec = MODELS[name]
    if hasattr(spec.config, "from_options"):  # a config that passes options on, e.g. to a classifier's body
        config = spec.config.from_options(**{**overrides, **spec.fixed})
    else:
        fields = dataclasses.fields(spec.config)
        unknown = [k for k in overrides if k not in {f.name for f in fields}]
        if unknown:
            takes = ", ".join(option_name(f.name) for f in fields if "help" in f.metadata and f.name not in spec.fixed)
            raise MakemoreError(f"the {name} model has no {', '.join(map(option_name, unknown))}: drop it ({name} "
                                f"takes {takes})")
        config = spec.config(**{**overrides, **spec.fixed})
    return spec.complete(config) if spec.complete else config


def stored_config(name, values):
    """The config of model name from a run's config.json (values: its stored fields)."""
    if name == CUSTOM:
        return from_dict(CustomConfig, values, "model_config")
    spec = MODELS[name]
    config = from_dict(spec.config, values, "model_config")
    return spec.complete(config) if spec.complete else config


def build_model(name, config, module=None):
    """The model of a registry name and its config. module: the user's own model, for a run of one (as
    the model itself, or a classifier's body); makemore cannot build that from a config."""
    if name == CUSTOM and module is not None:
        return module
    if name == CUSTOM:
        raise MakemoreError(f"this run holds a model of your own ({config.name}, defined in {config.module}), which "
                            f"makemore cannot rebuild; open it from Python with "
                            f"makemore.open_run(path, model={config.name.rpartition('.')[2]}(...)), built as it was "
                            "trained")
    spec = MODELS[name]
    return spec.build(config, module) if spec.build else model_class(spec.model)(config)


def model_class(where):
    """The class at "module:Class" in makemore.models, its module imported now (it imports torch)."""
    module, name = where.split(":")
    return getattr(importlib.import_module(f"makemore.models.{module}"), name)
