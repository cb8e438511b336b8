"""The model registry: name -> (config dataclass, model class)."""
import dataclasses

from makemore.errors import MakemoreError
from makemore.models.mlp import MLP, MLPConfig

MODELS = {
    "mlp": (MLPConfig, MLP),
}


def model_config(name, **overrides):
    """The named model's config with its defaults, updated with the given fields."""
    if name not in MODELS:
        raise MakemoreError(f"unknown model '{name}'; pass --model with one of: {', '.join(MODELS)}")
    config_cls = MODELS[name][0]
    known = {f.name for f in dataclasses.fields(config_cls)}
    return config_cls(**{k: v for k, v in overrides.items() if k in known})


def build_model(name, config):
    return MODELS[name][1](config)
