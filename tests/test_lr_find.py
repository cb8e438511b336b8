"""`makemore lr-find`: the learning-rate range test."""
import csv
import itertools
import math
import shlex

import pytest
from conftest import assert_user_error, run

from makemore.lrfind import centred_means, rates, suggest
from makemore.runs import Run

TINY = ["--n-embd", 8, "--n-hidden", 64, "--batch-size", 32, "--device", "cpu"]


def read_curve(path):
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def test_rates_grow_evenly_on_a_log_scale():
    lrs = rates(1e-4, 1e5, 10)
    assert lrs[0] == 1e-4 and math.isclose(lrs[-1], 1e5)
    assert all(math.isclose(b / a, 10.0) for a, b in itertools.pairwise(lrs))


def test_centred_means_average_the_neighbours_without_lag():
    assert centred_means([1, 2, 3, 4, 5], width=3) == [1.5, 2, 3, 4, 4.5]
    ramp = list(range(20))
    assert centred_means(ramp)[5:15] == ramp[5:15]  # a running average would trail a rising curve


def curve(smoothed):
    return [{"step": i + 1, "lr": 10.0 ** (i / 10 - 5), "loss": v, "smoothed": v} for i, v in enumerate(smoothed)]


def test_the_suggestion_is_where_the_loss_has_made_most_of_its_fall():
    # flat at 3, a fall to 2 over steps 21-40, a valley whose lowest point is far to the right, then a climb
    smoothed = [3.0] * 20 + [3 - k / 20 for k in range(1, 21)] + [2.0] * 20 + [1.99] + [2.0] * 9 + [2.5, 4, 9]
    lowest, suggested, why_none = suggest(curve(smoothed), "diverged")
    assert lowest["step"] == 61 and why_none is None
    assert suggested == curve(smoothed)[39]["lr"]  # step 40, 2.0: the first within 5% of the fall from 3 to 1.99
    assert suggest(curve(smoothed), "diverged")[1] < lowest["lr"] / 50  # not tied to the wandering lowest point


def test_no_suggestion_when_the_range_misses_the_fall():
    rising = [3.0 + k / 10 for k in range(40)]
    assert suggest(curve(rising), "diverged")[1:] == (None, "the loss did not fall: pass a smaller --start")
    falling = [3.0 - k / 100 for k in range(40)]
    assert suggest(curve(falling), "end")[1:] == (None, "the loss was still falling at --end: pass a larger --end")
    assert suggest(curve(falling), "diverged")[1] is not None  # it fell, then blew up within one window


def test_lr_find_writes_the_curve_and_suggests_a_rate(tmp_path, words_file):
    out = tmp_path / "lr-find"
    result = run("lr-find", "--data", words_file, "--out-dir", out, "--start", 1e-4, "--end", 100, "--steps", 120,
                 *TINY)
    assert result.exit_code == 0, result.output
    rows = read_curve(out / "mlp-words.csv")
    assert (out / "mlp-words.png").stat().st_size > 10_000
    # no run, no checkpoint: the curve, and the record of the files makemore wrote there
    assert sorted(p.name for p in out.iterdir()) == [".makemore-files.json", "mlp-words.csv", "mlp-words.png"]
    assert [r["step"] for r in rows] == list(range(1, len(rows) + 1))
    assert rows[0]["lr"] == 1e-4 and all(b["lr"] > a["lr"] for a, b in itertools.pairwise(rows))
    # a rate of 100 wrecks AdamW: the test stops once the loss has blown up, well before the last rate
    assert "diverged at lr" in result.stdout and len(rows) < 120
    smoothed = [r["smoothed"] for r in rows if math.isfinite(r["smoothed"])]
    best = min(smoothed)
    assert best < smoothed[0] - 0.5  # it learned on the way
    assert max(smoothed[smoothed.index(best):]) > 2 * best  # and the loss climbed after its lowest point
    lowest = min((r for r in rows if math.isfinite(r["smoothed"])), key=lambda r: r["smoothed"])
    assert f"lowest, {lowest['smoothed']:.4f}, at lr {lowest['lr']:.2g}" in result.stdout
    suggested = next(line for line in result.stdout.splitlines() if line.startswith("  makemore train "))
    args = shlex.split(suggested.removeprefix("  makemore "))
    assert args[args.index("--lr") + 1] == f"{suggest(rows, 'diverged')[1]:.2g}" and "--steps" not in args
    trained = run(*args, "--max-steps", 20, "--out-dir", tmp_path / "runs", "--name", "suggested")
    assert trained.exit_code == 0, trained.output  # the command runs as printed, with the options given here
    assert Run.open(tmp_path / "runs" / "suggested").model_config.n_hidden == 64

    again = run("lr-find", "--data", words_file, "--out-dir", out, "--steps", 20, *TINY)
    assert again.exit_code == 0, again.output
    assert "reached --end 1" in again.stdout and len(read_curve(out / "mlp-words-2.csv")) == 20
    assert read_curve(out / "mlp-words.csv") == rows  # the first curve is kept


def test_lr_find_is_repeatable_and_takes_the_training_options(tmp_path, prose_file):
    args = ["lr-find", "--model", "lstm", "--data", prose_file, "--n-embd", 8, "--n-hidden", 16, "--n-layer", 1,
            "--seq-len", 16, "--batch-size", 8, "--steps", 20, "--device", "cpu", "--out-dir", tmp_path]
    first = run(*args, "--name", "a", "--carry-state", "true")
    second = run(*args, "--name", "b", "--carry-state", "true")
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert read_curve(tmp_path / "a.csv") == read_curve(tmp_path / "b.csv")
    other = run(*args, "--name", "c", "--carry-state", "true", "--seed", 2)
    assert other.exit_code == 0, other.output
    assert read_curve(tmp_path / "c.csv") != read_curve(tmp_path / "a.csv")


@pytest.mark.parametrize("args, fragments", [
    (["--start", 0], ["0 < --start < --end", "--start 1e-5"]),
    (["--start", 1, "--end", 0.1], ["0 < --start < --end"]),
    (["--steps", 5], ["--steps 5 is too few", "at least 10"]),
    (["--model", "bigram"], ["no learning rate to find", "--fit gradient"]),
    (["--model", "mlp", "--n-head", 2], ["--n-head"]),
])
def test_lr_find_bad_options(tmp_path, words_file, args, fragments):
    assert_user_error(run("lr-find", "--data", words_file, "--out-dir", tmp_path / "out", *args), *fragments)
    assert not (tmp_path / "out").exists()


def test_lr_find_sets_the_schedule_itself(tmp_path, words_file):
    result = run("lr-find", "--data", words_file, "--lr", 0.01, "--max-steps", 100, "--out-dir", tmp_path / "out")
    assert_user_error(result, "lr-find sets the schedule itself", "drop --lr, --max-steps")
    assert "--warmup-steps" not in run("lr-find", "--help").stdout  # not offered, as they do nothing here
    assert not (tmp_path / "out").exists()


def test_lr_find_from_a_language_model_suggests_a_finetune(tmp_path, labeled_folder, lm_run, lm_backward_run):
    out = tmp_path / "lr-find"
    args = ["--data", labeled_folder, "--batch-size", 32, "--device", "cpu", "--out-dir", out]
    result = run("lr-find", "--from", lm_run, "--backward", lm_backward_run, "--start", 1e-4, "--end", 100, "--steps",
                 80, *args)
    assert result.exit_code == 0, result.output
    assert f"body: lstm from {lm_run / 'best.pt'}" in result.output
    assert f"backward body: lstm from {lm_backward_run / 'best.pt'}" in result.output
    rows = read_curve(out / "classifier-labeled.csv")
    assert (out / "classifier-labeled.png").stat().st_size > 10_000
    assert min(r["smoothed"] for r in rows) < rows[0]["smoothed"] - 0.3  # it learned the labels on the way
    suggested = next(line for line in result.stdout.splitlines() if line.startswith("  makemore "))
    command = shlex.split(suggested.removeprefix("  makemore "))
    assert command[:5] == ["finetune", "--from", str(lm_run), "--backward", str(lm_backward_run)]
    assert "--model" not in command and command[command.index("--lr") + 1] == f"{suggest(rows, 'diverged')[1]:.2g}"
    finetuned = run(*command, "--max-steps", 20, "--eval-interval", 10, "--out-dir", tmp_path / "runs", "--name", "ft")
    assert finetuned.exit_code == 0, finetuned.output  # the command runs as printed
    assert Run.open(tmp_path / "runs" / "ft").model_config.pretrained_backward == str(lm_backward_run)


@pytest.mark.parametrize("args, fragments", [
    (["--model", "mlp"], ["--from finetunes a classifier", "drop --model mlp"]),
    (["--n-hidden", 64], ["the body comes from --from", "drop --n-hidden"]),
    (["--encoder", "gru"], ["the body comes from --from", "drop --encoder"]),
    (["--bidirectional", "true"], ["needs its backward body", "--backward"]),
])
def test_lr_find_from_bad_options(tmp_path, labeled_folder, lm_run, args, fragments):
    result = run("lr-find", "--from", lm_run, "--data", labeled_folder, "--out-dir", tmp_path / "out", *args)
    assert_user_error(result, *fragments)
    assert not (tmp_path / "out").exists()


def test_lr_find_backward_needs_from(tmp_path, labeled_folder, lm_backward_run):
    result = run("lr-find", "--backward", lm_backward_run, "--data", labeled_folder, "--out-dir", tmp_path / "out")
    assert_user_error(result, "--backward is the second body", "pass --from too")
