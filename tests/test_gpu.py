"""CUDA paths: bf16 autocast training, device-resident batches, sampling on the GPU. Skipped without CUDA."""
import math

import pytest
import torch
from conftest import TINY_MODEL, TINY_TRAIN

from makemore.checkpoint import Run
from makemore.data import DataConfig
from makemore.sampling import generate
from makemore.trainer import run_training

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
    _, metrics = run_training(tmp_path / "clf", "classifier", {"freeze_steps": 20}, DataConfig(data=str(labeled_folder)),
                              train, log=lambda _: None, pretrained=tmp_path / "lm")
    assert metrics["device"].startswith("cuda") and metrics["val_accuracy"] > 0.6
