"""`makemore runs`: a row per run, read from the run directories, in the order asked for."""
import json
import os
import shutil

from conftest import TINY_CLF, assert_user_error, run, tiny_args

from makemore.runs import Run


def row_of(output, name):
    """The table line of run `name` (a run's name is its line's first cell)."""
    lines = [line for line in output.splitlines() if line.split(" ", 1)[0] == name]
    assert len(lines) == 1, output
    return lines[0]


def names_in(output):
    """The runs of the table, in its order: the lines between the header and the footer."""
    lines = output.splitlines()
    return [
        line.split(" ", 1)[0] for line in lines[1 : lines.index(next(x for x in lines if x.startswith("val, test: ")))]
    ]


def test_runs_lists_each_run_with_its_figures_and_state(tmp_path, words_file, labeled_folder):
    runs = tmp_path / "runs"
    for name, steps in (("b-short", 100), ("a-long", 300)):
        result = run("train", "--data", words_file, "--out-dir", runs, "--name", name, *tiny_args(max_steps=steps))
        assert result.exit_code == 0, result.output
    result = run("train", "--model", "classifier", "--data", labeled_folder, "--out-dir", runs, "--name", "clf",
                 "--max-steps", 40, "--eval-interval", 20, *TINY_CLF)
    assert result.exit_code == 0, result.output
    shutil.copytree(runs / "a-long", runs / "c-cut")
    (runs / "c-cut" / "metrics.json").unlink()  # as a run interrupted after its last checkpoint
    shutil.copytree(runs / "b-short", runs / "d-bad")
    (runs / "d-bad" / "config.json").write_text("{not json")
    (runs / "notes").mkdir()  # a folder that is no run is not listed

    result = run("runs", runs)
    assert result.exit_code == 0, result.output
    assert names_in(result.output) == ["a-long", "b-short", "c-cut", "clf", "d-bad"]
    for name, steps in (("a-long", 300), ("b-short", 100)):
        m = json.loads((runs / name / "metrics.json").read_text())
        line = row_of(result.output, name)
        assert f" {steps} " in line and f"{m['val_loss']:.4f}" in line and f"{m['test_loss']:.4f}" in line
        assert f"{m['parameters']:,}" in line and line.endswith(" done") and " mlp " in line and str(words_file) in line
    m = json.loads((runs / "clf" / "metrics.json").read_text())
    line = row_of(result.output, "clf")
    assert "classifier (lstm)" in line and f"{m['test_accuracy']:.3f} / {m['test_macro_f1']:.3f}" in line
    assert f"{m['val_accuracy']:.3f} / {m['val_macro_f1']:.3f}" in line
    best = json.loads((runs / "a-long" / "metrics.json").read_text())["val_loss"]
    line = row_of(result.output, "c-cut")
    assert "300 of 300" in line and f"{best:.4f}" in line and line.endswith(" unfinished")
    assert "unreadable (config.json is not valid JSON (" in row_of(result.output, "d-bad")
    assert f"makemore train --resume --out-dir {runs} --name c-cut" in result.output

    result = run("runs", runs, "--sort", "val")  # language models best first, then classifiers, the unreadable last
    assert result.exit_code == 0, result.output
    losses = {n: json.loads((runs / n / "metrics.json").read_text())["val_loss"] for n in ("a-long", "b-short")}
    assert losses["a-long"] < losses["b-short"]  # 300 steps beat 100; c-cut has a-long's checkpoints
    order = names_in(result.output)
    assert set(order[:2]) == {"a-long", "c-cut"} and order[2:] == ["b-short", "clf", "d-bad"]

    later = (runs / "a-long" / "config.json").stat().st_mtime + 60
    os.utime(runs / "b-short" / "last.pt", (later, later))  # as if trained last
    assert names_in(run("runs", runs, "--sort", "recent").output)[0] == "b-short"

    run_ = Run.open(runs / "c-cut")
    run_.lock()  # a trainer holds it
    try:
        assert row_of(run("runs", runs).output, "c-cut").endswith(" training")
    finally:
        run_._lock.close()
    result = run("runs", runs / "a-long")  # a run itself: its own row
    assert result.exit_code == 0 and names_in(result.output) == ["a-long"]


def test_runs_points_into_folders_of_runs_and_reads_a_sweeps_states(tmp_path, words_file):
    sweep = tmp_path / "runs" / "sweeps" / "s"
    result = run("train", "--data", words_file, "--out-dir", sweep, "--name", "trial-10", *tiny_args(max_steps=100))
    assert result.exit_code == 0, result.output
    for name in ("trial-2", "trial-3"):
        shutil.copytree(sweep / "trial-10", sweep / name)
        (sweep / name / "metrics.json").unlink()
    (sweep / "sweep.json").write_text("{}")
    (sweep / "results.csv").write_text("trial,state,run_dir\n" + "".join(
        f"{n},{state},{sweep / f'trial-{n}'}\n" for n, state in ((2, "pruned"), (3, "running"), (10, "complete"))))
    result = run("runs", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    assert f"no runs in {tmp_path / 'runs'}" in result.output and "folders of runs in" in result.output
    assert f"makemore runs {tmp_path / 'runs' / 'sweeps'}" in result.output
    result = run("runs", sweep)
    assert result.exit_code == 0, result.output
    assert names_in(result.output) == ["trial-2", "trial-3", "trial-10"]  # in number order
    assert row_of(result.output, "trial-2").endswith(" pruned")
    assert row_of(result.output, "trial-3").endswith(" unfinished")
    assert f"makemore sweep --resume --name s --out-dir {sweep.parent}" in result.output


def test_runs_of_a_folder_that_is_not_there(tmp_path):
    assert_user_error(run("runs", tmp_path / "nope"), "is not a folder", "--out-dir")
