"""Data: where text comes from (sources), how it is split into a corpus (corpus), and how batches are
drawn from it on the training device (batches).

A source is a local file or folder, a URL, `hf:<dataset>[:<config>]` (Hugging Face `datasets`), a
table, or a short name from CORPORA. This package's own names are the ones the rest of makemore uses.
Sources and corpora do not need torch; the batches' names import it on first use, so the command line
checks --data before torch loads.
"""
import importlib

from makemore.data.corpus import Corpus, LabeledCorpus, load_corpus, load_whole
from makemore.data.sources import CORPORA, resolve, title

__all__ = ["CORPORA", "Corpus", "LabeledBatches", "LabeledCorpus", "LineBatches", "StreamBatches", "load_corpus",
           "load_whole", "make_batches", "noised", "resolve", "title"]
BATCHES = {"LabeledBatches", "LineBatches", "StreamBatches", "make_batches", "noised"}  # in makemore.data.batches


def __getattr__(name):
    if name not in BATCHES:
        raise AttributeError(f"module 'makemore.data' has no attribute {name!r}")
    return getattr(importlib.import_module("makemore.data.batches"), name)
