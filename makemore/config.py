"""Config dataclasses to and from JSON, and the checks their fields share.

Each field carries its help text (and, for a fixed set of values, its choices) in the field's
metadata: the CLI builds its options from them, so a new field is one line in one place.
"""
import dataclasses

from makemore.errors import MakemoreError


def option_name(field_name):
    return "--" + field_name.replace("_", "-")


def check_positive(config, *names):
    for name in names:
        value = getattr(config, name)
        if value is None or not value > 0:  # not '<= 0', which a nan passes
            raise MakemoreError(f"{option_name(name)} must be positive, got {value}")


def check_non_negative(config, *names):
    for name in names:
        value = getattr(config, name)
        if value is None or not value >= 0:
            raise MakemoreError(f"{option_name(name)} must be zero or more, got {value}")


def check_fraction(config, *names):
    for name in names:
        value = getattr(config, name)
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
        raise MakemoreError(f"{what} in config.json has unknown fields {sorted(unknown)}; the run is from another version of makemore")
    try:
        return cls(**values)
    except TypeError as e:
        raise MakemoreError(f"{what} in config.json is invalid ({e}); the run directory is damaged") from None
