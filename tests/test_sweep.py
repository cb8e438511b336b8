"""`makemore sweep`: trials, results, plots, resume, failed trials and shared study stores."""
import csv
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import TINY_MODEL, assert_user_error, run

from makemore.runs import Run
from makemore.search import parse_param
from makemore.sweep import Sweep

TINY = ["--n-embd", TINY_MODEL["n_embd"], "--max-steps", 60, "--eval-interval", 20, "--batch-size", 32,
        "--warmup-steps", 5, "--device", "cpu"]
PLOTS = ["loss_vs_params.png", "curves.png", "best_so_far.png", "heatmap.png"]


def read_results(sweep_dir):
    with open(sweep_dir / "results.csv") as f:
        return list(csv.DictReader(f))


def test_parse_param_forms():
    assert parse_param("lr", "log:1e-4:3e-2").log and parse_param("lr", "log:1e-4:3e-2").low == 1e-4
    assert parse_param("block_size", "3..8").grid() == [3, 4, 5, 6, 7, 8]
    assert parse_param("n_hidden", "64,128").choices == [64, 128]
    assert parse_param("norm", "none,batch").choices == ["none", "batch"]
    assert parse_param("dropout", "float:0:0.5").high == 0.5 and not parse_param("dropout", "float:0:0.5").log
    dropout = parse_param("dropout", "0..0.5")  # an end that is not an integer makes a float range
    assert (dropout.low, dropout.high, dropout.integer, dropout.log) == (0.0, 0.5, False, False)
    assert parse_param("n_hidden", [64, 128]).choices == [64, 128]  # from a TOML list


def test_a_tiny_sweep_on_two_workers_writes_results_and_every_plot(tmp_path):
    out = tmp_path / "sweeps"
    result = run("sweep", "--name", "tiny", "--out-dir", out, "--trials", 4, "--parallel", 2, "--sampler", "random",
                 "--param", "lr=log:3e-3:3e-2", "--param", "n_hidden=16,32", *TINY)
    assert result.exit_code == 0, result.output
    rows = read_results(out / "tiny")
    assert len(rows) == 4 and len({r["trial"] for r in rows}) == 4
    assert {r["state"] for r in rows} <= {"complete", "pruned"}
    assert all(r["val_loss"] and float(r["val_loss"]) < 3.3 for r in rows)
    for name in PLOTS:
        assert (out / "tiny" / name).stat().st_size > 5000, name
    # each trial is an ordinary run: the two workers never ran the same one
    run_dirs = [r["run_dir"] for r in rows]
    assert len(set(run_dirs)) == 4 and all(os.path.exists(os.path.join(d, "config.json")) for d in run_dirs)
    assert "best: trial" in result.output and "makemore train --model mlp --data names" in result.output


def test_a_grid_sweep_on_two_workers_visits_every_point_once(tmp_path):
    out = tmp_path / "sweeps"
    result = run("sweep", "--name", "grid", "--out-dir", out, "--parallel", 2, "--sampler", "grid", "--pruner", "none",
                 "--param", "lr=0.01,0.02,0.03", "--param", "n_hidden=8,16", *TINY)
    assert result.exit_code == 0, result.output
    points = sorted((float(r["lr"]), int(r["n_hidden"])) for r in read_results(out / "grid"))
    assert points == [(lr, n) for lr in (0.01, 0.02, 0.03) for n in (8, 16)]


def test_plots_show_the_searched_range_what_is_minimised_and_whole_trial_numbers(tmp_path, monkeypatch):
    from makemore import plots

    saved = {}
    monkeypatch.setattr(plots, "_save", lambda fig, path: saved.setdefault(path.name, fig.axes[0]))
    rows = [{"trial": k, "state": "complete", "lr": lr, "val_error": error, "curve": {10: error + 0.1, 20: error}}
            for k, (lr, error) in enumerate([(0.012, 0.13), (0.02, 0.12), (0.015, 0.14)])]
    plots.sweep_plots(rows, [parse_param("lr", "log:1e-3:1e-1")], {}, tmp_path, "t",
                      ("val_error", "val error rate (1 - accuracy)"))
    by_param, best = saved["loss_vs_params.png"], saved["best_so_far.png"]
    low, high = by_param.get_xlim()
    assert low < 1e-3 and high > 1e-1 and by_param.get_ylabel() == "val error rate (1 - accuracy)"
    assert all(float(t).is_integer() for t in best.get_xticks())
    assert [t.get_text() for t in best.get_legend().get_texts()] == ["complete", "best so far"]  # no empty "pruned"

    rows[2]["state"] = "pruned"
    saved.clear()
    plots.sweep_plots(rows, [parse_param("lr", "log:1e-3:1e-1")], {}, tmp_path, "t",
                      ("val_error", "val error rate (1 - accuracy)"))
    line = saved["best_so_far.png"].get_lines()[0]
    assert list(line.get_xdata()) == [0, 1, 2] and list(line.get_ydata()) == [0.13, 0.12, 0.12]  # on to the last trial

    for r, n_hidden in zip(rows, (8, 8, 16)):
        r["n_hidden"] = n_hidden
    plots.sweep_plots(rows, [parse_param("lr", "log:1e-3:1e-1"), parse_param("n_hidden", "8,16")], {}, tmp_path, "t",
                      ("val_error", "val error rate (1 - accuracy)"))
    cells = sorted(t.get_text() for t in saved["heatmap.png"].texts)
    assert cells == ["0.120\n(n=1)", "0.130\n(n=1)", "0.140\n(n=1, pruned)"]  # a pruned trial's loss is when it stopped


def test_a_classifier_sweep_searches_its_body(tmp_path, labeled_folder):
    out = tmp_path / "sweeps"
    result = run("sweep", "--model", "classifier", "--data", labeled_folder, "--name", "clf", "--out-dir", out,
                 "--sampler", "grid", "--pruner", "none", "--param", "n_hidden=8,16", *TINY)
    assert result.exit_code == 0, result.output
    rows = read_results(out / "clf")
    assert sorted(r["n_hidden"] for r in rows) == ["16", "8"] and {r["state"] for r in rows} == {"complete"}
    assert "stopped with an error" not in result.output  # optuna's grid sampler crashed the worker of the last point
    assert sorted(Run.open(r["run_dir"]).model_config.encoder_config["n_hidden"] for r in rows) == [8, 16]


def test_a_sweep_from_a_language_model_finetunes_every_trial_from_it(tmp_path, labeled_folder, lm_run):
    import torch

    out = tmp_path / "sweeps"
    result = run("sweep", "--from", lm_run, "--data", labeled_folder, "--name", "ft", "--out-dir", out,
                 "--sampler", "grid", "--pruner", "none", "--param", "head_dropout=0,0.5",
                 "--freeze-steps", 1000, *TINY[2:])  # the body stays frozen: it must be the language model's
    assert result.exit_code == 0, result.output
    rows = read_results(out / "ft")
    assert sorted(float(r["head_dropout"]) for r in rows) == [0, 0.5] and {r["state"] for r in rows} == {"complete"}
    # a classifier's sweep minimises what its trials keep their checkpoint by: the val error rate
    assert all(abs(float(r["val_error"]) - (1 - float(r["val_accuracy"]))) < 1e-4 for r in rows)
    assert all(0 <= float(r["val_macro_f1"]) <= 1 and float(r["val_loss"]) > 0 for r in rows)
    best = min(rows, key=lambda r: float(r["val_error"]))
    assert f"best: trial {best['trial']}, val error rate (1 - accuracy) {float(best['val_error']):.4f}" in result.output
    lm = Run.open(lm_run)
    body, _ = lm.load_model("best")
    for r in rows:
        trial = Run.open(r["run_dir"])
        assert trial.model_config.pretrained == str(lm_run) and trial.tokenizer.chars == lm.tokenizer.chars
        classifier, _ = trial.load_model("best")
        for name, weight in body.state_dict().items():
            assert torch.equal(classifier.encoder.state_dict()[name], weight), name
    assert "val_accuracy" in result.output and "complete: val error 0." in result.output  # table and progress lines
    assert f"makemore finetune --from {lm_run} --data {labeled_folder}" in result.output


def test_a_sweep_with_a_backward_language_model_finetunes_bidirectional_classifiers(tmp_path, labeled_folder, lm_run,
                                                                                    lm_backward_run):
    import torch

    from makemore.checkpoint import load_checkpoint

    out = tmp_path / "sweeps"
    result = run("sweep", "--from", lm_run, "--backward", lm_backward_run, "--data", labeled_folder, "--name", "bi",
                 "--out-dir", out, "--sampler", "grid", "--pruner", "none", "--param", "head_dropout=0,0.5",
                 "--freeze-steps", 1000, *TINY[2:])  # both bodies stay frozen: they must be the language models'
    assert result.exit_code == 0, result.output
    rows = read_results(out / "bi")
    assert len(rows) == 2 and {r["state"] for r in rows} == {"complete"}
    for r in rows:
        trial = Run.open(r["run_dir"])
        assert trial.model_config.bidirectional and trial.model_config.pretrained_backward == str(lm_backward_run)
        weights = load_checkpoint(Path(r["run_dir"]) / "best.pt")["model"]
        for prefix, lm in (("encoder", lm_run), ("backward", lm_backward_run)):
            for name, tensor in load_checkpoint(lm / "best.pt")["model"].items():
                assert torch.equal(weights[f"{prefix}.{name}"], tensor), (prefix, name)
    assert f"makemore finetune --from {lm_run} --backward {lm_backward_run} --data {labeled_folder}" in result.output
    assert_user_error(run("sweep", "--name", "bi", "--out-dir", out, "--resume", "--backward", lm_backward_run),
                      "keeps its settings", "drop --backward")


def test_no_trial_is_pruned_while_its_learning_rate_warms_up(tmp_path, monkeypatch):
    import optuna

    from makemore.search import SweepConfig

    monkeypatch.setattr(optuna.trial.Trial, "should_prune", lambda self: True)  # a pruner that prunes whenever asked
    fixed = {"n_embd": TINY_MODEL["n_embd"], "max_steps": 60, "eval_interval": 20, "warmup_steps": 30,
             "batch_size": 32, "device": "cpu"}
    sweep = Sweep.create(SweepConfig(name="warm", sampler="grid", params={"lr": "0.01,0.02"}, fixed=fixed), tmp_path)
    sweep.work(log=lambda _: None)
    trials = sweep.study().get_trials()
    assert len(trials) == 2 and {t.state.name for t in trials} == {"PRUNED"}
    assert [t.user_attrs["steps"] for t in trials] == [40, 40]  # validated at 20 within the warmup, pruned at 40


def test_no_finetuned_trial_is_pruned_while_its_body_thaws(tmp_path, monkeypatch, labeled_folder, lm_run):
    import optuna

    from makemore.search import SweepConfig

    monkeypatch.setattr(optuna.trial.Trial, "should_prune", lambda self: True)  # a pruner that prunes whenever asked
    fixed = {"max_steps": 120, "eval_interval": 20, "warmup_steps": 10,
             "batch_size": 32, "device": "cpu", "unfreeze": "gradual"}
    cfg = SweepConfig(name="thaw", model="classifier", data=str(labeled_folder), sampler="grid",
                      params={"freeze_steps": "0,20,40"}, fixed=fixed, pretrained=str(lm_run))
    sweep = Sweep.create(cfg, tmp_path)
    sweep.work(log=lambda _: None)
    trials = sweep.study().get_trials()
    assert {t.state.name for t in trials} == {"PRUNED"}
    # the first validation (every 20 steps) after the warmup (10 steps) and the gradual thaw (2 x freeze_steps)
    assert {t.params["freeze_steps"]: t.user_attrs["steps"] for t in trials} == {0: 20, 20: 60, 40: 100}


def test_loss_limits_leave_out_at_most_the_worst_tenth():
    from makemore.plots import loss_limits

    low, high = loss_limits([1.80, 2.29])  # a two-trial sweep: both on the plot
    assert low < 1.80 and high > 2.29
    losses = [2.0 + k / 100 for k in range(19)] + [9.0]  # one diverged trial of twenty falls off the top
    low, high = loss_limits(losses)
    assert high > max(losses[:-1]) and high < 9.0


def test_a_trial_that_raises_is_recorded_and_the_others_finish(tmp_path):
    out = tmp_path / "sweeps"
    result = run("sweep", "--name", "bad", "--out-dir", out, "--sampler", "grid", "--pruner", "none",
                 "--param", "lr=0.01,-1,0.02", *TINY)
    assert result.exit_code == 0, result.output
    rows = {float(r["lr"]): r for r in read_results(out / "bad")}
    assert rows[-1.0]["state"] == "fail" and "--lr must be positive" in rows[-1.0]["error"]
    assert rows[0.01]["state"] == rows[0.02]["state"] == "complete"

    every = run("sweep", "--name", "worse", "--out-dir", out, "--sampler", "grid", "--param", "lr=-1,-2", *TINY)
    assert every.exit_code == 2 and "every trial failed (trial 0: --lr must be positive" in every.stderr
    assert "best so far none" in every.output and len(read_results(out / "worse")) == 2


def test_resume_runs_interrupted_trials_again_and_never_redoes_finished_ones(tmp_path):
    out = tmp_path / "sweeps"
    args = ["--name", "re", "--out-dir", out, "--sampler", "random", "--pruner", "none",
            "--param", "lr=log:3e-3:3e-2", "--param", "n_hidden=16,32", *TINY]
    assert run("sweep", *args, "--trials", 2).exit_code == 0  # 2 trials done ...
    finished = {
        r["trial"]: os.path.getmtime(os.path.join(r["run_dir"], "metrics.json")) for r in read_results(out / "re")
    }
    # ... and a third killed mid-run: RUNNING in the store, owned by a process that is gone
    config = out / "re" / "sweep.json"
    config.write_text(config.read_text().replace('"trials": 2', '"trials": 3'))
    sweep = Sweep.open("re", out)
    study = sweep.study()
    study.enqueue_trial({"lr": 0.01, "n_hidden": 32})
    killed = study.ask()
    for param in sweep.cfg.space():  # a worker suggests its values first thing
        param.suggest(killed)
    killed.set_user_attr("worker", f"{socket.gethostname()}:{2**22 + 12345}")

    result = run("sweep", "--name", "re", "--out-dir", out, "--resume")
    assert result.exit_code == 0, result.output
    assert "1 interrupted trial(s) will run again" in result.output
    assert "3 trials of mlp on names (2 finished before)" in result.output
    assert [line.split()[0] for line in result.output.splitlines() if line.startswith("[")] == [
        "[3/3]"
    ]  # only the new one
    rows = read_results(out / "re")
    assert len(rows) == 3 and all(r["state"] == "complete" for r in rows)
    assert str(killed.number) not in {r["trial"] for r in rows}  # its parameters ran again as a new trial
    assert any(float(r["lr"]) == 0.01 and r["n_hidden"] == "32" for r in rows)
    for trial, mtime in finished.items():  # finished trials were not run again
        row = next(r for r in rows if r["trial"] == trial)
        assert os.path.getmtime(os.path.join(row["run_dir"], "metrics.json")) == mtime

    result = run("sweep", "--name", "re", "--out-dir", out, "--resume")  # nothing left: no workers, the report again
    assert result.exit_code == 0, result.output
    assert "all 3 trials are finished or running; nothing to start" in result.output and "best: trial" in result.output
    assert_user_error(
        run("sweep", "--name", "re", "--out-dir", out, "--resume", "--parallel", 0), "--parallel must be positive"
    )


def sweep_in_background(name, out, trials, **popen):
    """A `makemore sweep` of `trials` tiny trials in its own process, once its first trial has saved last.pt."""
    args = ["--name", name, "--out-dir", str(out), "--trials", trials, "--sampler", "random", "--pruner", "none",
            "--param", "lr=log:3e-3:3e-2", *TINY[:2], "--max-steps", 1200, "--eval-interval", 200, *TINY[6:]]
    proc = subprocess.Popen([sys.executable, "-m", "makemore", "sweep", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)
    deadline = time.time() + 120
    while not list(out.glob(f"{name}/trial-0/last.pt")) and time.time() < deadline:
        time.sleep(0.2)
    return proc


def test_ctrl_c_stops_the_sweep_and_resume_finishes_it(tmp_path):
    out = tmp_path / "sweeps"
    proc = sweep_in_background("stop", out, 3, start_new_session=True)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "--resume" in stderr and "Traceback" not in stderr

    result = run("sweep", "--name", "stop", "--out-dir", out, "--resume")
    assert result.exit_code == 0, result.output
    rows = read_results(out / "stop")
    assert len(rows) == 3 and all(r["state"] == "complete" for r in rows)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds the worker through Linux's /proc")
def test_a_worker_stopped_by_a_signal_leaves_its_trial_for_resume(tmp_path):
    out = tmp_path / "sweeps"
    proc = sweep_in_background("term", out, 2)
    workers = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    assert len(workers) == 1
    os.kill(int(workers[0]), signal.SIGTERM)  # the worker alone, as `kill` or a cluster's scheduler would
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "stopped by a signal; 1 unfinished trial(s) run again with --resume" in stdout
    assert "--resume" in stderr and "Traceback" not in stderr

    result = run("sweep", "--name", "term", "--out-dir", out, "--resume")
    assert result.exit_code == 0, result.output
    rows = read_results(out / "term")
    assert len(rows) == 2 and all(r["state"] == "complete" for r in rows)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds the worker through Linux's /proc")
def test_sigterm_to_the_sweep_stops_its_workers_too(tmp_path):
    out = tmp_path / "sweeps"
    proc = sweep_in_background("kill", out, 2)
    workers = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    assert len(workers) == 1
    proc.terminate()  # `kill PID` of the sweep, as a scheduler stops a job
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "stopped by a signal; 1 unfinished trial(s) run again with --resume" in stdout
    assert not Path(f"/proc/{workers[0]}").exists()  # no worker left training on its own

    result = run("sweep", "--name", "kill", "--out-dir", out, "--resume")
    assert result.exit_code == 0, result.output
    assert len(read_results(out / "kill")) == 2


def test_a_sweep_from_a_toml_file(tmp_path):
    space = tmp_path / "space.toml"
    space.write_text('model = "mlp"\ntrials = 2\nsampler = "random"\n[params]\nlr = "log:3e-3:3e-2"\n'
                     'n_hidden = [16, 32]\n[fixed]\nmax_steps = 40\neval_interval = 20\nn_embd = 8\ndevice = "cpu"\n')
    result = run("sweep", "--space", space, "--name", "fromfile", "--out-dir", tmp_path / "sweeps")
    assert result.exit_code == 0, result.output
    rows = read_results(tmp_path / "sweeps" / "fromfile")
    assert len(rows) == 2 and all(r["steps"] == "40" for r in rows)
    report = run("sweep", "--name", "fromfile", "--out-dir", tmp_path / "sweeps", "--report")
    assert report.exit_code == 0 and "best: trial" in report.output


def test_the_command_line_replaces_a_space_files_setting_whether_searched_or_fixed(tmp_path):
    from makemore.search import new_sweep_config

    space = tmp_path / "space.toml"
    space.write_text('[params]\nlr = "log:3e-3:3e-2"\nn_hidden = [16, 32]\n[fixed]\nmax_steps = 40\nn_embd = 8\n')
    cfg = new_sweep_config(None, None, None, None, None, ["max_steps=20..40"], space, tmp_path, {"n_hidden": 24})
    assert cfg.params == {"lr": "log:3e-3:3e-2", "max_steps": "20..40"}
    assert cfg.fixed == {"n_hidden": 24, "n_embd": 8}
