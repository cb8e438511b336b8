"""CUDA paths: bf16 autocast training, device-resident batches, sampling on the GPU. Skipped without CUDA."""
import math

import pytest
import torch
from conftest import TINY_MODEL, TINY_TRAIN

from makemore.config import DataConfig
from makemore.runs import Run, run_training
from makemore.sampling import generate

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


@pytest.mark.parametrize("model,ema", [("mlp", 0), ("lstm", 0.99)])
def test_cuda_training_with_bf16_autocast_learns_and_resumes(tmp_path, model, ema):
    train = {**TINY_TRAIN, "device": "cuda", "ema": ema}  # a resumed average moves from the checkpoint to the GPU
    _, metrics = run_training(tmp_path / "run", model, dict(TINY_MODEL), DataConfig(), train, log=lambda _: None)
    assert metrics["device"].startswith("cuda") and metrics["val_loss"] < math.log(27) - 0.8
    _, metrics = run_training(tmp_path / "run", resume=True, train_overrides={"max_steps": 400}, log=lambda _: None)
    assert metrics["steps"] == 400


def test_sampling_on_cuda_is_repeatable(tmp_path):
    train = {**TINY_TRAIN, "device": "cuda"}
    run_training(tmp_path / "run", "mlp", dict(TINY_MODEL), DataConfig(), train, log=lambda _: None)
    run = Run.open(tmp_path / "run")
    model, _ = run.load_model("best", torch.device("cuda"))
    a = generate(model, run.tokenizer, 16, "lines", prefix="ma", seed=1)
    assert a == generate(model, run.tokenizer, 16, "lines", prefix="ma", seed=1)
    assert all(s.startswith("ma") for s in a)


def test_cuda_classifier_finetunes_with_bf16_autocast(tmp_path, labeled_folder):
    train = {**TINY_TRAIN, "device": "cuda", "max_steps": 100, "eval_interval": 50}
    data = DataConfig(data=str(labeled_folder), kind="labeled")
    run_training(tmp_path / "lm", "lstm", dict(TINY_MODEL), data, train, log=lambda _: None)
    _, metrics = run_training(tmp_path / "clf", "classifier", {"freeze_steps": 20},
                              DataConfig(data=str(labeled_folder)), train, log=lambda _: None,
                              pretrained=tmp_path / "lm")
    assert metrics["device"].startswith("cuda") and metrics["val_accuracy"] > 0.6


@pytest.mark.parametrize("large", [False, True])
def test_prose_batches_on_cuda_equal_those_on_the_cpu(tmp_path, prose_file, monkeypatch, large):
    # in memory the ids live on the GPU; memory-mapped they stay on the CPU and each batch is copied over
    from makemore import data
    from makemore.data import sources
    from makemore.tokenizer import CharTokenizer

    monkeypatch.setattr(sources, "MAP_BYTES", 1 if large else sources.MAP_BYTES)
    corpus = data.load_corpus(DataConfig(data=str(prose_file)), log=lambda _: None)
    tokenizer = CharTokenizer(corpus.chars())
    on = {d: data.make_batches(corpus, tokenizer, torch.device(d), 16, 4)["train"] for d in ("cpu", "cuda")}
    assert on["cuda"].ids.device.type == ("cpu" if large else "cuda")
    drawn = {d: b.sample(8, torch.Generator().manual_seed(0)) for d, b in on.items()}
    assert all(t.device.type == "cuda" for t in drawn["cuda"])
    assert all(torch.equal(a, b.cpu()) for a, b in zip(drawn["cpu"], drawn["cuda"]))
    train = {**TINY_TRAIN, "device": "cuda", "max_steps": 30, "eval_interval": 30}
    _, metrics = run_training(tmp_path / "run", "lstm", dict(TINY_MODEL), DataConfig(data=str(prose_file), seq_len=16),
                              train, log=lambda _: None)
    assert metrics["device"].startswith("cuda") and math.isfinite(metrics["test_loss"])
