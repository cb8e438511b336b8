"""The model registry: name -> config dataclass, model class, and the config fields the name fixes."""
import dataclasses
from typing import NamedTuple

from makemore.errors import MakemoreError
from makemore.models.mlp import MLP, MLPConfig
from makemore.models.recurrent import RecurrentConfig, RecurrentLM


class ModelSpec(NamedTuple):
    config: type
    model: type
    fixed: dict = {}  # config fields set by the model's name, e.g. the cell of an LSTM


MODELS = {
    "mlp": ModelSpec(MLPConfig, MLP),
    "lstm": ModelSpec(RecurrentConfig, RecurrentLM, {"cell": "lstm"}),
    "gru": ModelSpec(RecurrentConfig, RecurrentLM, {"cell": "gru"}),
    "rnn": ModelSpec(RecurrentConfig, RecurrentLM, {"cell": "rnn"}),
}


def model_config(name, **overrides):
    """The named model's config with its defaults, updated with the given fields it has."""
    if name not in MODELS:
        raise MakemoreError(f"unknown model '{name}'; pass --model with one of: {', '.join(MODELS)}")
    spec = MODELS[name]
    known = {f.name for f in dataclasses.fields(spec.config)}
    return spec.config(**{k: v for k, v in overrides.items() if k in known}, **spec.fixed)


def build_model(name, config):
    return MODELS[name].model(config)
