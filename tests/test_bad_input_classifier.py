"""Bad input to classifiers: labeled data, finetune --from, classify. Each a one-line error, exit 2."""
import json
import shutil

from conftest import TINY_CLF, assert_user_error, run, snapshot
from test_classifier import two_classifiers


def test_finetune_bad_input(tmp_path, labeled_folder, lm_run, trained_run):
    before = snapshot(lm_run)
    clf = run("train", "--model", "classifier", "--data", labeled_folder, "--out-dir", tmp_path, "--name", "c",
              "--max-steps", 5, "--eval-interval", 5, *TINY_CLF)
    assert clf.exit_code == 0, clf.output
    assert_user_error(run("finetune", "--from", tmp_path / "c", "--data", labeled_folder, "--out-dir", tmp_path),
                      "is a classifier run, not a language model")
    # the names model knows a-z only: the labeled data has no capitals, so give it some
    capitals = tmp_path / "capitals.tsv"
    capitals.write_text(
        "".join(f"{'A' if i % 2 else 'B'}\t{'ab'[i % 2] * (1 + i // 2)}{'É' if i == 7 else ''}\n" for i in range(40))
    )
    assert_user_error(run("finetune", "--from", trained_run, "--data", capitals, "--out-dir", tmp_path),
                      "lacks 1 character(s)", "U+00C9")
    # the language model's train split (split seed 42) holds items of this split's val and test
    assert_user_error(
        run("finetune", "--from", lm_run, "--data", labeled_folder, "--split-seed", 7, "--out-dir", tmp_path),
        "holds items of this classifier's val and test splits",
        "held-out items in all",
        "--split-seed",
    )
    assert_user_error(run("finetune", "--from", tmp_path / "nothing", "--data", labeled_folder, "--out-dir", tmp_path),
                      "not a makemore run", "pass --from runs/<name>")
    assert snapshot(lm_run) == before


def test_labeled_data_bad_input(tmp_path, labeled_folder):
    (labeled_folder / "empty.txt").write_text("\n\n", encoding="utf-8")
    assert_user_error(run("train", "--model", "classifier", "--data", labeled_folder, "--out-dir", tmp_path),
                      "class 'empty'", "has no items")
    (labeled_folder / "empty.txt").unlink()
    bad = tmp_path / "bad.tsv"
    bad.write_text("F\temma\nM\tliam\nolivia\n", encoding="utf-8")
    assert_user_error(run("train", "--model", "classifier", "--data", bad, "--out-dir", tmp_path),
                      "line 3 of", "not label<TAB>item")
    one = tmp_path / "one"
    one.mkdir()
    (one / "English.txt").write_text("smith\njones\nbrown\n", encoding="utf-8")
    assert_user_error(run("train", "--model", "classifier", "--data", one, "--out-dir", tmp_path),
                      "one class only (English)", "at least 2 labels")
    few = tmp_path / "few.tsv"
    few.write_text("F\temma\nM\tliam\nF\tava\nM\tnoah\n", encoding="utf-8")
    assert_user_error(run("train", "--model", "classifier", "--data", few, "--out-dir", tmp_path),
                      "too few items (4) to split: the val split gets none", "--val-frac")
    words = tmp_path / "words.txt"
    words.write_text("anna\nbob\ncleo\n", encoding="utf-8")
    assert_user_error(run("train", "--model", "classifier", "--data", words, "--kind", "lines", "--out-dir", tmp_path),
                      "a classifier needs labeled data")
    assert_user_error(run("train", "--model", "classifier", "--encoder", "classifier", "--data", labeled_folder),
                      "--encoder")
    assert_user_error(run("train", "--model", "classifier", "--data", labeled_folder, "--label-frac", 0),
                      "--label-frac must be in (0, 1]")


def test_classify_and_transfer_bad_input(tmp_path, trained_run, labeled_folder):
    assert_user_error(run("train", "--model", "classifier", "--data", "names", "--out-dir", tmp_path),
                      "corpus 'names' has no labels", "--data names-sex, glosses, surnames")
    result = run("transfer", "--data", "names", "--out-dir", tmp_path / "tr")  # told before its language model starts
    assert_user_error(result, "corpus 'names' has no labels", "--data names-sex, glosses, surnames")
    assert "lm: training" not in result.output and not (tmp_path / "tr").exists()
    assert_user_error(run("classify", "--run", trained_run, "emma"), "is a language model (mlp)", "makemore finetune")
    assert_user_error(run("classify", "--run", tmp_path / "nothing", "emma"), "not a makemore run")
    for fractions in ("0,0.5", "half", "1.5"):
        assert_user_error(run("transfer", "--data", labeled_folder, "--fractions", fractions, "--out-dir", tmp_path),
                          "--fractions must be comma-separated numbers in (0, 1]")
    assert not (tmp_path / "lm").exists()


def test_averaged_runs_bad_input(tmp_path, labeled_folder, trained_run):
    c1, c2 = two_classifiers(tmp_path, labeled_folder)
    for command in (["eval"], ["classify", "kaku"]):
        assert_user_error(run(*command, "--run", c1, "--run", trained_run),
                          f"{trained_run} is a language model (mlp) and {c1} a classifier", "runs of one kind")
        assert_user_error(run(*command, "--run", c1, "--run", tmp_path / "c1" / ".." / "c1"), "is passed twice")
        assert_user_error(run(*command, "--run", c1, "--fit-weights"), "--fit-weights weighs several runs", "two --run")
    for name, change, fragments in [
        ("order", lambda c: c["model_config"].update(labels=c["model_config"]["labels"][::-1]),
         ["their labels are in another order"]),
        ("others", lambda c: c["model_config"].update(labels=["kappa", "rho", "tau"]), ["has tau that", "lacks sigma"]),
        ("split", lambda c: c["data"].update(split_seed=7), ["split their data differently", "--split-seed"]),
    ]:
        other = tmp_path / name
        shutil.copytree(c2, other)
        config = json.loads((other / "config.json").read_text())
        change(config)
        del config["data_sha256"]  # a run trained with these options would record the digest of its own splits
        (other / "config.json").write_text(json.dumps(config))
        assert_user_error(run("eval", "--run", c1, "--run", other), *fragments)
        if name != "split":  # classify reads no split
            assert_user_error(run("classify", "--run", c1, "--run", other, "kaku"), *fragments)
    latin = tmp_path / "latin"  # read with another --encoding: --data must say how to read the file for both
    shutil.copytree(c2, latin)
    config = json.loads((latin / "config.json").read_text())
    config["data"]["encoding"] = "latin-1"
    (latin / "config.json").write_text(json.dumps(config))
    assert_user_error(run("eval", "--run", c1, "--run", latin, "--data", labeled_folder),
                      "read their data as latin-1 and utf-8", "pass --encoding")
    result = run("eval", "--run", c1, "--run", latin, "--data", labeled_folder, "--encoding", "utf-8")
    assert result.exit_code == 0, result.output
