"""`makemore` as torchrun (or a test) starts it, with one process sent SIGINT as it begins training step
STOP_AT (counted from 0 over the run's life), STOP_RANK the rank signalled (default 0): a run interrupted at
an exact step, as Ctrl-C or SIGTERM interrupts it at some step."""
import os
import signal

from makemore.distributed import rank
from makemore.trainer import Trainer

STOP_AT, STOP_RANK = int(os.environ["STOP_AT"]), int(os.environ.get("STOP_RANK", "0"))
take_step = Trainer.take_step


def interrupting(self, lr):
    if self.step == STOP_AT and rank() == STOP_RANK:
        signal.raise_signal(signal.SIGINT)
    return take_step(self, lr)


Trainer.take_step = interrupting

if __name__ == "__main__":
    from makemore.cli import main

    main()
