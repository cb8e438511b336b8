"""Data: where text comes from (sources), how it is split into a corpus (corpus), and how batches are
drawn from it on the training device (batches).

A source is a local file or folder, a URL, `hf:<dataset>[:<config>]` (Hugging Face `datasets`), a
table, or a short name from CORPORA. This package's own names are the ones the rest of makemore uses.
"""
from makemore.data.batches import LabeledBatches, LineBatches, StreamBatches, make_batches, noised
from makemore.data.corpus import Corpus, LabeledCorpus, load_corpus, load_whole
from makemore.data.sources import CORPORA, resolve, title

__all__ = ["CORPORA", "Corpus", "LabeledBatches", "LabeledCorpus", "LineBatches", "StreamBatches", "load_corpus",
           "load_whole", "make_batches", "noised", "resolve", "title"]
