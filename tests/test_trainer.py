import json
import math
import signal

import pytest
import torch
from conftest import TINY_MODEL, TINY_TRAIN

from makemore.checkpoint import load_checkpoint
from makemore.config import DataConfig, TrainConfig
from makemore.data import LineBatches
from makemore.errors import MakemoreError
from makemore.runs import Run, run_training
from makemore.trainer import lr_at


def train_tiny(run_dir, data="names", model="mlp", **train):
    quiet = lambda _: None
    return run_training(run_dir, model, dict(TINY_MODEL), DataConfig(data=data),
                        {**TINY_TRAIN, **train}, log=quiet)


def test_a_short_run_learns_and_fills_the_run_directory(tmp_path):
    reason, metrics = train_tiny(tmp_path / "run")
    assert reason == "max_steps"
    assert metrics["val_loss"] < math.log(27) - 0.8  # uniform guessing is ln(27) = 3.30
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"config.json", "tokenizer.json", "last.pt", "best.pt", "metrics.json", "samples.txt"} <= files
    assert any(name.startswith("events.out.tfevents") for name in files)
    assert len((tmp_path / "run" / "samples.txt").read_text().splitlines()) == 20
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["steps"] == TINY_TRAIN["max_steps"]


@pytest.mark.parametrize("model", ["lstm", "gru", "rnn", "transformer"])
def test_every_model_learns_on_the_shared_trainer(tmp_path, model):
    # Dropout off: 300 steps of a tiny model are too few for a regulariser to pay its way.
    quiet = lambda _: None
    sizes = {"n_embd": TINY_MODEL["n_embd"]} if model == "transformer" else TINY_MODEL  # it has no n_hidden
    _, metrics = run_training(tmp_path / "run", model, {**sizes, "dropout": 0.0}, DataConfig(data="names"),
                              {**TINY_TRAIN, "lr": 1e-2}, log=quiet)
    assert metrics["val_loss"] < math.log(27) - 0.8


def test_tensorboard_has_train_and_val_loss(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train_tiny(tmp_path / "run")
    events = EventAccumulator(str(tmp_path / "run"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"loss/train", "loss/val", "train_diagnostics/lr", "train_diagnostics/grad_norm",
            "train_diagnostics/chars_per_s"} <= tags
    assert {f"train_diagnostics/grad_norm_{layer}" for layer in ("wte", "hidden", "lm_head")} <= tags  # per group
    assert [e.step for e in events.Scalars("loss/val")] == [100, 200, 300]


def test_loss_regression_of_a_seeded_tiny_run(tmp_path):
    # Recorded on CPU with torch 2.13; a change of more than the tolerance means the numbers moved.
    _, metrics = train_tiny(tmp_path / "run")
    assert metrics["val_loss"] == pytest.approx(2.3375, abs=0.02)


def test_a_run_rebuilds_from_its_directory_alone(tmp_path):
    train_tiny(tmp_path / "run")
    run = Run.open(tmp_path / "run")
    model, ckpt = run.load_model("best")
    assert run.model_name == "mlp" and run.model_config.n_hidden == TINY_MODEL["n_hidden"]
    assert not model.training and ckpt["step"] == TINY_TRAIN["max_steps"]


@pytest.mark.parametrize("model,ema,noise", [("mlp", 0, 0), ("lstm", 0, 0), ("mlp", 0.99, 0), ("mlp", 0, 0.1)])
def test_interrupted_and_resumed_run_ends_where_an_uninterrupted_one_does(tmp_path, monkeypatch, model, ema, noise):
    _, straight = train_tiny(tmp_path / "straight", model=model, ema=ema, input_noise=noise)

    calls = {"n": 0}
    original = LineBatches.sample

    def sample_then_interrupt(self, batch_size, generator):
        calls["n"] += 1
        if calls["n"] == 150:  # Ctrl-C in the middle of step 150
            signal.raise_signal(signal.SIGINT)
        return original(self, batch_size, generator)

    monkeypatch.setattr(LineBatches, "sample", sample_then_interrupt)
    reason, _ = train_tiny(tmp_path / "resumed", model=model, ema=ema, input_noise=noise)
    assert reason == "interrupted"
    assert load_checkpoint(tmp_path / "resumed" / "last.pt")["step"] == 150
    monkeypatch.setattr(LineBatches, "sample", original)
    reason, resumed = run_training(tmp_path / "resumed", resume=True, log=lambda _: None)
    assert reason == "max_steps"
    for key in ("train_loss", "val_loss", "test_loss"):
        assert resumed[key] == pytest.approx(straight[key], abs=1e-5)
    a = load_checkpoint(tmp_path / "straight" / "last.pt")
    b = load_checkpoint(tmp_path / "resumed" / "last.pt")
    assert all(torch.allclose(a["model"][k], b["model"][k], atol=1e-6) for k in a["model"])
    assert (a["ema"] is None) == (b["ema"] is None) == (not ema)
    assert all(torch.allclose(a["ema"][k], b["ema"][k], atol=1e-6) for k in a["ema"] or {})


def test_input_noise_corrupts_what_training_reads_and_nothing_else(tmp_path, monkeypatch):
    from makemore.models.mlp import MLP

    read = []
    forward = MLP.forward

    def spy(self, idx, targets=None):
        read.append((self.training, idx.clone(), None if targets is None else targets.clone()))
        return forward(self, idx, targets)

    monkeypatch.setattr(MLP, "forward", spy)
    monkeypatch.setattr("makemore.tasks.generate", lambda *args, **kwargs: ["x"] * 20)  # the samples differ
    _, plain = train_tiny(tmp_path / "plain")
    clean = read[:]
    read.clear()
    _, noisy = train_tiny(tmp_path / "noisy", input_noise=0.3)
    # training steps read whole batches (the few rows read before training size a step's memory)
    trained = [(c, n) for c, n in zip(clean, read) if c[0] and len(c[1]) == TINY_TRAIN["batch_size"]]
    evaluated = [(c, n) for c, n in zip(clean, read) if not c[0]]
    assert len(trained) == TINY_TRAIN["max_steps"] and evaluated
    changed = [float((n[1] != c[1]).float().sum() / (c[1] != 0).sum()) for c, n in trained]
    assert 0.2 < sum(changed) / len(changed) < 0.3  # 0.3 of the characters hit, some redrawn as themselves
    assert all(torch.equal(c[2], n[2]) for c, n in trained)  # the targets stay
    assert all(torch.equal(c[1], n[1]) for c, n in evaluated)  # validation and test read the data as it is
    assert noisy["train_loss"] != plain["train_loss"] and noisy["val_loss"] < math.log(27) - 0.8


def test_ema_validates_keeps_and_serves_the_average_of_the_weights(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = tmp_path / "run"
    _, metrics = run_training(run_dir, "mlp", {**TINY_MODEL, "norm": "batch"}, DataConfig(data="names"),
                              {**TINY_TRAIN, "ema": 0.99}, log=lambda _: None)
    ckpt = load_checkpoint(run_dir / "best.pt")
    trained, average = ckpt["model"], ckpt["ema"]
    assert set(average) == {k for k, v in trained.items() if v.is_floating_point()}  # BatchNorm's running stats too
    assert "hidden.0.1.num_batches_tracked" not in average
    assert all(not torch.equal(trained[k], average[k]) for k in average if k.endswith("weight"))
    model, _ = Run.open(run_dir).load_model("best")
    assert all(torch.equal(v, average[k]) for k, v in model.state_dict().items() if k in average)
    events = EventAccumulator(str(run_dir))
    events.Reload()
    best_val = min(e.value for e in events.Scalars("loss/val"))  # validation measured the average that best.pt keeps
    assert metrics["val_loss"] == pytest.approx(best_val, abs=1e-5)
    assert metrics["val_loss"] < math.log(27) - 0.8


def test_resume_can_extend_training(tmp_path):
    _, first = train_tiny(tmp_path / "run")
    last = (tmp_path / "run" / "last.pt").read_bytes()
    said = []
    reason, again = run_training(tmp_path / "run", resume=True, log=said.append)  # done: nothing to train or validate
    assert reason == "max_steps" and again["steps"] == first["steps"] and again["val_loss"] == first["val_loss"]
    assert any(f"has trained its {TINY_TRAIN['max_steps']} steps; pass a larger --max-steps to train "
               "on" in line for line in said)
    assert (tmp_path / "run" / "last.pt").read_bytes() == last
    _, metrics = run_training(tmp_path / "run", resume=True, train_overrides={"max_steps": 400}, log=lambda _: None)
    assert metrics["steps"] == 400
    config = (tmp_path / "run" / "config.json").read_bytes()
    with pytest.raises(MakemoreError, match="is at step 400, past --max-steps 200; pass a larger --max-steps"):
        run_training(tmp_path / "run", resume=True, train_overrides={"max_steps": 200}, log=lambda _: None)
    assert (tmp_path / "run" / "config.json").read_bytes() == config  # the run still says how it was trained


def test_early_stopping_stops_after_patience_evaluations_without_progress(tmp_path):
    reason, metrics = train_tiny(tmp_path / "run", lr=1e-9, warmup_steps=0, max_steps=2000, eval_interval=20,
                                 patience=2)
    assert reason == "early_stop"
    assert metrics["steps"] < 2000
    said = []
    reason, again = run_training(tmp_path / "run", resume=True, log=said.append)  # the same patience: nothing to do
    assert reason == "early_stop" and again["steps"] == metrics["steps"] and again["val_loss"] == metrics["val_loss"]
    assert any("pass a larger --patience, or 0, to train on" in line for line in said)
    reason, more = run_training(tmp_path / "run", resume=True, train_overrides={"patience": 4}, log=lambda _: None)
    assert reason == "early_stop" and more["steps"] > metrics["steps"]  # it trained on


def test_nan_loss_stops_without_saving_a_broken_model(tmp_path):
    with pytest.raises(MakemoreError, match="loss became nan by step 50; no checkpoint had been saved yet: lower --lr"):
        train_tiny(tmp_path / "run", lr=1e300, grad_clip=0)  # finite, and far past what any model survives
    assert not (tmp_path / "run" / "best.pt").exists() and not (tmp_path / "run" / "last.pt").exists()

    train_tiny(tmp_path / "good")  # a good run that diverges when resumed keeps its good checkpoints
    before = {name: (tmp_path / "good" / name).read_bytes() for name in ("best.pt", "last.pt")}
    with pytest.raises(MakemoreError, match="nothing was saved after step 300 .last.pt and best.pt hold the last good "
                                            "model"):
        run_training(tmp_path / "good", resume=True,
                     train_overrides={"max_steps": 400, "lr": 1e300, "grad_clip": 0}, log=lambda _: None)
    assert {name: (tmp_path / "good" / name).read_bytes() for name in before} == before


def test_a_nan_val_loss_stops_without_saving(tmp_path, monkeypatch):
    import makemore.evaluate

    scored = []
    real = makemore.evaluate.evaluate

    def evaluate(*args):  # the model stops scoring val after its first validation
        scored.append(real(*args))
        return scored[-1] if len(scored) == 1 else math.nan

    monkeypatch.setattr(makemore.evaluate, "evaluate", evaluate)
    with pytest.raises(MakemoreError, match="val loss became nan at step 200; nothing was saved after step 100 "
                                            ".last.pt"):
        train_tiny(tmp_path / "run")
    ckpt = load_checkpoint(tmp_path / "run" / "best.pt")
    assert ckpt["step"] == 100 and ckpt["best_val"] == scored[0]
    assert load_checkpoint(tmp_path / "run" / "last.pt")["step"] == 100


def test_an_existing_run_is_never_overwritten(tmp_path):
    train_tiny(tmp_path / "run")
    before = (tmp_path / "run" / "best.pt").read_bytes()
    with pytest.raises(MakemoreError, match="already exists; pass --resume"):
        train_tiny(tmp_path / "run")
    assert (tmp_path / "run" / "best.pt").read_bytes() == before


def test_schedule_warms_up_then_decays():
    cfg = TrainConfig(lr=1.0, warmup_steps=10, max_steps=110, min_lr_frac=0.1)
    assert lr_at(0, cfg) == pytest.approx(0.1) and lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(60, cfg) == pytest.approx(0.55) and lr_at(110, cfg) == pytest.approx(0.1)


def test_a_short_run_warms_up_for_half_its_steps_at_most_then_decays():
    cfg = TrainConfig(lr=1.0, warmup_steps=300, max_steps=100, min_lr_frac=0.1)
    assert lr_at(0, cfg) == pytest.approx(0.02) and lr_at(49, cfg) == pytest.approx(1.0)
    assert lr_at(75, cfg) == pytest.approx(0.55) and lr_at(100, cfg) == pytest.approx(0.1)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_saves_a_consistent_checkpoint_and_exits(tmp_path, signum):
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "makemore", "train", "--out-dir", str(tmp_path), "--name", "sig", "--device", "cpu",
           "--n-embd", "8", "--n-hidden", "64", "--max-steps", "1000000", "--eval-interval", "50", "--log-interval",
           "10"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        if line.startswith("step"):  # the first validation has been written
            proc.send_signal(signum)
            break
    output = line + proc.stdout.read()
    assert proc.wait(timeout=60) == 130, output
    assert "interrupted at step" in output and "Traceback" not in output
    ckpt = load_checkpoint(tmp_path / "sig" / "last.pt")
    assert ckpt["step"] >= 50 and set(ckpt["optimizer"]["state"])
    _, metrics = run_training(tmp_path / "sig", resume=True, train_overrides={"max_steps": ckpt["step"] + 20},
                              log=lambda _: None)
    assert metrics["steps"] == ckpt["step"] + 20


def test_a_run_started_ignoring_ctrl_c_ignores_it(tmp_path):
    """A script's background job (`makemore train ... &`) starts with SIGINT ignored; SIGTERM still stops it."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "makemore", "train", "--out-dir", str(tmp_path), "--name", "bg", "--device", "cpu",
           "--n-embd", "8", "--n-hidden", "64", "--max-steps", "1000000", "--eval-interval", "50"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))  # noqa: PLW1509 (no threads here)
    validations = 0
    for line in proc.stdout:
        if line.startswith("step"):
            validations += 1
            proc.send_signal(signal.SIGINT if validations == 1 else signal.SIGTERM)
            if validations == 2:
                break
    output = line + proc.stdout.read()
    assert validations == 2 and proc.wait(timeout=60) == 130, output
    assert load_checkpoint(tmp_path / "bg" / "last.pt")["step"] >= 100  # it went on after the Ctrl-C at step 50


def test_bigram_counts_are_exact_and_the_one_layer_net_reaches_the_same_loss(tmp_path):
    quiet, lines = lambda _: None, []
    reason, counts = run_training(tmp_path / "counts", "bigram", {}, DataConfig(), {"device": "cpu"}, log=lines.append)
    assert reason == "max_steps" and counts["steps"] == 0
    assert any(line.endswith("no training steps") for line in lines)  # not "0 steps of 64 at lr 0.01"
    # exact maximum likelihood: no table fits the training split better than the (nearly unsmoothed) counts
    _, exact = run_training(
        tmp_path / "exact", "bigram", {"smoothing": 1e-6}, DataConfig(), {"device": "cpu"}, log=quiet
    )
    _, net = run_training(tmp_path / "net", "bigram", {"fit": "gradient"}, DataConfig(),
                          {"device": "cpu", "max_steps": 1500, "eval_interval": 500}, log=quiet)
    assert exact["train_loss"] <= net["train_loss"] + 1e-4
    assert net["val_loss"] == pytest.approx(counts["val_loss"], abs=0.01)


def test_wavenet_learns(tmp_path):
    _, metrics = run_training(tmp_path / "run", "wavenet", {"n_embd": 8, "n_hidden": 32}, DataConfig(),
                              dict(TINY_TRAIN), log=lambda _: None)
    assert metrics["val_loss"] < math.log(27) - 0.8


@pytest.fixture
def prose_file(tmp_path):
    """About 30,000 characters of made-up prose: a stream corpus."""
    import random

    rng = random.Random(1)
    words = ["the", "king", "is", "dead", "long", "live", "queen", "and", "her", "loyal", "men", "ride", "north"]
    text = " ".join(rng.choice(words) for _ in range(6000)).replace(" north ", " north.\n")
    path = tmp_path / "prose.txt"
    path.write_text(text, encoding="utf-8")
    return path


def train_carried(run_dir, prose, **train):
    quiet = lambda _: None
    overrides = {**TINY_TRAIN, "carry_state": True, "lr": 1e-2, "max_steps": 200, "eval_interval": 100, **train}
    return run_training(run_dir, "lstm", {**TINY_MODEL, "dropout": 0.0}, DataConfig(data=str(prose), seq_len=32),
                        overrides, log=quiet)


def test_carried_state_reads_each_row_on_from_its_last_window_and_learns(tmp_path, prose_file, monkeypatch):
    from makemore.trainer import Trainer

    seen = []
    original = Trainer.next_windows

    def record(self, train):
        x, y, fresh = original(self, train)
        seen.append((self.cursors.clone(), fresh.clone()))
        return x, y, fresh

    monkeypatch.setattr(Trainer, "next_windows", record)
    _, metrics = train_carried(tmp_path / "run", prose_file)
    assert seen[0][1].all()  # the first batch starts from zeros
    (before, _), (after, fresh) = seen[10], seen[11]
    assert torch.equal(after[~fresh], before[~fresh] + 32) and (~fresh).sum() > 0  # the next window of the same row
    assert metrics["val_loss"] < 1.2  # 13 words: far below ln(V) = 2.7 once words are learned


def test_carried_state_resumes_exactly(tmp_path, prose_file, monkeypatch):
    from makemore.trainer import Trainer

    _, straight = train_carried(tmp_path / "straight", prose_file)
    calls = {"n": 0}
    original = Trainer.next_windows

    def windows_then_interrupt(self, train):
        calls["n"] += 1
        if calls["n"] == 120:
            signal.raise_signal(signal.SIGINT)
        return original(self, train)

    monkeypatch.setattr(Trainer, "next_windows", windows_then_interrupt)
    reason, _ = train_carried(tmp_path / "resumed", prose_file)
    assert reason == "interrupted" and load_checkpoint(tmp_path / "resumed" / "last.pt")["carried"] is not None
    monkeypatch.setattr(Trainer, "next_windows", original)
    _, resumed = run_training(tmp_path / "resumed", resume=True, log=lambda _: None)
    assert resumed["val_loss"] == pytest.approx(straight["val_loss"], abs=1e-5)


def test_carry_state_needs_a_recurrent_model_on_prose(tmp_path, prose_file):
    with pytest.raises(MakemoreError, match="--carry-state needs a recurrent model"):
        run_training(tmp_path / "a", "mlp", dict(TINY_MODEL), DataConfig(data=str(prose_file), seq_len=3),
                     {**TINY_TRAIN, "carry_state": True}, log=lambda _: None)
    with pytest.raises(MakemoreError, match="on lines"):
        run_training(tmp_path / "b", "lstm", dict(TINY_MODEL), DataConfig(data="names"),
                     {**TINY_TRAIN, "carry_state": True}, log=lambda _: None)


def test_the_learning_rate_decays_over_the_time_budget_where_it_runs_out_first():
    cfg = TrainConfig(max_steps=1000, warmup_steps=100, lr=0.01, min_lr_frac=0.1, max_time="1m")
    assert lr_at(50, cfg, 0.0) == pytest.approx(0.01 * 51 / 100)  # warmup goes by steps
    decayed = 0.01 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.9)))
    assert lr_at(50, cfg, 0.9) == pytest.approx(decayed)  # a warmup the time cuts short meets the decay
    assert lr_at(550, cfg, 0.0) == pytest.approx(0.01 * (0.1 + 0.9 * 0.5))  # halfway by steps
    assert lr_at(150, cfg, 0.5) == pytest.approx(0.01 * (0.1 + 0.9 * 0.5))  # halfway by time, which leads
    assert lr_at(150, cfg, 1.0) == pytest.approx(0.001)  # the time is up: the end of the decay
    assert cfg.max_seconds == 60 and TrainConfig(max_time=90).max_time == "90s"
    for bad in ("3 minutes", "0", "-1m", "1d", "nan"):
        with pytest.raises(MakemoreError, match="is not a time to train for; pass e.g. 90s, 3m or 1.5h"):
            TrainConfig(max_time=bad)


def test_a_timed_run_stops_at_its_budget_validates_there_and_resumes_to_a_larger_one(tmp_path, monkeypatch):
    import time

    now = {"t": 0.0}

    def clock():  # a step takes about a millisecond of this clock, however busy the machine is
        now["t"] += 0.0005
        return now["t"]

    monkeypatch.setattr(time, "perf_counter", clock)
    reason, metrics = train_tiny(tmp_path / "timed", max_steps=100_000, max_time="0.2s", eval_interval=10_000)
    assert reason == "max_time" and metrics["stopped"] == "max_time"
    assert 20 < metrics["steps"] < 1000 and metrics["seconds"] == pytest.approx(0.2, abs=0.01)
    last = load_checkpoint(tmp_path / "timed" / "last.pt")
    assert last["evaluated_step"] == last["step"] == metrics["steps"]  # validated where the time ran out

    reason, more = run_training(tmp_path / "timed", resume=True, train_overrides={"max_time": "0.4s"},
                                log=lambda _: None)
    assert reason == "max_time" and more["steps"] > metrics["steps"]
    assert more["seconds"] == pytest.approx(0.4, abs=0.01)
