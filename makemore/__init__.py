"""makemore: character-level language models that make more of what you give them.

    import makemore as mm
    data = mm.load_data("names")                         # any --data source of the CLI
    run = mm.train("mlp", data, max_steps=20_000)         # a run folder in runs/, TensorBoard included
    run.sample(10, temperature=0.8)                      # a list of strings
    run.evaluate("test")                                 # the figures `makemore eval` prints
    mm.plot_loss(run)                                    # its train and val loss curves

Each call does what one command of the `makemore` CLI does; help(mm.train) and the others say how.
"""
import importlib
import sys
import types

__version__ = "0.1.0"
__all__ = ["MODELS", "Data", "MakemoreError", "Run", "Study", "baseline", "compare", "finetune", "list_runs",
           "load_data", "lr_find", "open_run", "plot_loss", "sweep", "train", "transfer"]
# where each name lives: imported on first use, so that `makemore --help` need not load torch
HOMES = {"MODELS": "makemore.models", "MakemoreError": "makemore.errors"}


def __getattr__(name):
    if name not in __all__:
        raise AttributeError(f"module 'makemore' has no attribute {name!r}")
    value = getattr(importlib.import_module(HOMES.get(name, "makemore.api")), name)
    globals()[name] = value  # looked up once
    return value


def __dir__():
    return sorted({*globals(), *__all__})


class Package(types.ModuleType):
    """makemore.compare, .sweep and .transfer are the API's functions, and modules of the same names do
    the work. Importing such a module sets it as an attribute of the package, which would hide the
    function: the package keeps those names for the API."""

    def __setattr__(self, name, value):
        if not (name in __all__ and isinstance(value, types.ModuleType)):
            super().__setattr__(name, value)


sys.modules[__name__].__class__ = Package
