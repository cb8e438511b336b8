"""makemore: character-level language models that make more of what you give them.

    import makemore as mm
    data = mm.load_data("names")                         # any --data source of the CLI
    run = mm.train("mlp", data, max_steps=20_000)         # a run folder in runs/, TensorBoard included
    run.sample(10, temperature=0.8)                      # a list of strings
    run.evaluate("test")                                 # the figures `makemore eval` prints
    mm.plot_loss(run)                                    # its train and val loss curves

Each call does what one command of the `makemore` CLI does; help(mm.train) and the others say how.
"""
from makemore.api import (
    Data,
    Run,
    Study,
    compare,
    finetune,
    list_runs,
    load_data,
    lr_find,
    open_run,
    plot_loss,
    sweep,
    train,
    transfer,
)
from makemore.errors import MakemoreError
from makemore.models import MODELS

__version__ = "0.1.0"
__all__ = ["MODELS", "Data", "MakemoreError", "Run", "Study", "compare", "finetune", "list_runs", "load_data",
           "lr_find", "open_run", "plot_loss", "sweep", "train", "transfer"]
