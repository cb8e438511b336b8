"""Run under torchrun as `train_zoo.py OUT NAMES LABELED`: every model of the zoo (and one of the user's own)
trains a few steps through the Python library in one process group, on a file of names and a labeled file,
into folder OUT; rank 0 prints each run's val figure."""
import math
import sys

import torch
from torch import nn

import makemore as mm
from makemore.distributed import is_main, size


class TinyMLP(nn.Module):
    """A model of the user's own: the contract forward(idx, targets=None) -> (logits, loss)."""

    def __init__(self, vocab_size=27, block_size=3):
        super().__init__()
        self.block_size = block_size
        self.wte = nn.Embedding(vocab_size, 8)
        self.out = nn.Linear(8 * block_size, vocab_size)

    def forward(self, idx, targets=None):
        windows = nn.functional.pad(idx, (self.block_size - 1, 0)).unfold(1, self.block_size, 1)  # (B, T, block)
        logits = self.out(self.wte(windows).flatten(2))
        loss = None if targets is None else nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(),
                                                                        ignore_index=-1)
        return logits, loss


out = sys.argv[1]
quiet = {"log": lambda *a: None, "progress": False, "max_steps": 20, "eval_interval": 10, "log_interval": 5,
         "batch_size": 16, "out_dir": out, "device": "cpu"}
names = mm.load_data(sys.argv[2], log=lambda *a: None)
runs = {
    "bigram": mm.train("bigram", names, name="bigram", **quiet),
    "bigram-gradient": mm.train("bigram", names, name="bigram-gradient", fit="gradient", **quiet),
    "mlp-batchnorm": mm.train("mlp", names, name="mlp-batchnorm", norm="batch", n_layer=2, **quiet),
    "mlp-ema": mm.train("mlp", names, name="mlp-ema", ema=0.9, **quiet),
    "wavenet": mm.train("wavenet", names, name="wavenet", **quiet),
    "lstm": mm.train("lstm", names, name="lstm", n_hidden=32, **quiet),
    "gru": mm.train("gru", names, name="gru", n_hidden=32, **quiet),
    "rnn": mm.train("rnn", names, name="rnn", n_hidden=32, **quiet),
    "transformer": mm.train("transformer", names, name="transformer", n_embd=32, **quiet),
    "classifier": mm.train("classifier", sys.argv[3], name="classifier", encoder="mlp", balance="loss", **quiet),
    "own": mm.train(TinyMLP(), names, name="own", **quiet),
}
runs["lm"] = mm.train("mlp", sys.argv[3], name="lm", **quiet)  # pretrained on the labeled items' train split
runs["finetuned"] = mm.finetune(runs["lm"], sys.argv[3], name="finetuned", freeze_steps=10, **quiet)
for label, run in runs.items():
    val = run.metrics["val_loss"]
    assert math.isfinite(val), (label, val)
    assert run.metrics.get("processes") == size(), run.metrics
    if is_main():
        print(f"{label} {val:.4f}", flush=True)
torch.distributed.barrier()
