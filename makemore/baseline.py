"""The bar a classifier must clear: a character n-gram baseline. Each item becomes the TF-IDF weights of
its character 1- to 4-grams (within words, sublinear term frequency), and a logistic regression reads
them (scikit-learn, an optional extra). It fits a train split of thousands of sentences in seconds, and on
text classification it is hard to beat; a neural classifier that does not beat it on the same split is
not worth its minutes, so `makemore baseline` and `makemore transfer` report it beside every classifier.
"""
import time

import numpy as np
import torch

from makemore.errors import MakemoreError
from makemore.evaluate import scores_of

NGRAMS = (1, 4)  # character n-grams, shortest and longest
C = 3.0  # inverse regularisation strength of the logistic regression


def fitted(train, ngrams=NGRAMS, c=C):
    """The baseline fitted on (item, label id) pairs: a scikit-learn pipeline whose predict_proba's
    columns are the label ids present in train (classes_)."""
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer  # an optional extra, slow to import
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
    except ImportError:
        raise MakemoreError("the n-gram baseline needs scikit-learn: pip install 'makemore[baseline]'") from None
    model = make_pipeline(TfidfVectorizer(analyzer="char_wb", ngram_range=tuple(ngrams), sublinear_tf=True,
                                          min_df=2 if len(train) >= 1000 else 1, dtype=np.float32),
                          LogisticRegression(C=c, max_iter=1000))
    items, labels = zip(*train)
    if len(set(labels)) < 2:
        raise MakemoreError("the n-gram baseline needs train items of 2 labels or more; these have one")
    return model.fit(items, labels)


def baseline_log_probs(model, pairs, n_classes):
    """Log-probabilities (N, n_classes) of the labels of (item, label) pairs, and their labels (N,); a label
    the baseline never saw in training gets probability 0."""
    p = torch.zeros(len(pairs), n_classes, dtype=torch.float64)
    probs = model.predict_proba([item for item, _ in pairs])
    p[:, torch.as_tensor(model.classes_)] = torch.as_tensor(probs, dtype=torch.float64)
    return p.clamp(min=1e-12).log().float(), torch.tensor([label for _, label in pairs])


def ngram_baseline(corpus, ngrams=NGRAMS, c=C):
    """The baseline fitted on a labeled corpus's train split and scored on its val and test splits, as a
    classifier's metrics.json names its figures: {"val_accuracy", "val_macro_f1", "val_loss", "test_...",
    "train_items", "seconds"}."""
    start = time.perf_counter()
    model = fitted(corpus.train, ngrams, c)
    out = {"train_items": len(corpus.train)}
    for name in ("val", "test"):
        pairs = corpus.splits()[name]
        if pairs:
            s = scores_of(*baseline_log_probs(model, pairs, len(corpus.labels)))
            out.update({f"{name}_{k}": s[k] for k in ("accuracy", "macro_f1", "loss")})
    out["seconds"] = round(time.perf_counter() - start, 2)
    return out


def describe(ngrams=NGRAMS, c=C):
    return f"character {ngrams[0]}-{ngrams[1]}-gram TF-IDF + logistic regression (C={c:g})"
