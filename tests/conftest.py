"""Hermetic test settings: no network, reference corpora from ../shared/data, caches in tmp."""
import os
import random
import signal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["MAKEMORE_OFFLINE"] = "1"
os.environ.setdefault("MAKEMORE_DATA", str(ROOT.parent / "shared" / "data"))
SHARED = Path(os.environ["MAKEMORE_DATA"])
# Tests send Ctrl-C to runs in this process and in child processes. pytest started as a script's
# background job inherits SIGINT ignored, which runs honour: take it back, for the children too.
signal.signal(signal.SIGINT, signal.default_int_handler)
needs_shared = pytest.mark.skipif(not (SHARED / "names.txt").exists(), reason=f"reference corpora not in {SHARED}")

# Small enough that a run takes a second or two on a CPU core, large enough to learn.
TINY_MODEL = {"n_embd": 8, "n_hidden": 64}
TINY_TRAIN = {"max_steps": 300, "batch_size": 32, "eval_interval": 100, "log_interval": 50, "warmup_steps": 20,
              "device": "cpu"}


def tiny_args(**extra):
    """CLI arguments for a tiny training run; an option given as None is left out."""
    args = []
    for key, value in {**TINY_MODEL, **TINY_TRAIN, **extra}.items():
        if value is not None:
            args += ["--" + key.replace("_", "-"), str(value)]
    return args


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MAKEMORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))


@pytest.fixture
def words_file(tmp_path):
    """A small line corpus of a few hundred made-up words."""
    import random

    rng = random.Random(0)
    syllables = ["ka", "lo", "mi", "ra", "ne", "to", "su", "vi", "an", "el"]
    words = {"".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(600)}
    path = tmp_path / "words.txt"
    path.write_text("\n".join(sorted(words)) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def prose_file(tmp_path):
    """A few kilobytes of prose, read as a stream corpus."""
    path = tmp_path / "prose.txt"
    path.write_text("To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n\n" * 40,
                    encoding="utf-8")
    return path


SYLLABLES = {"kappa": ["ka", "ko", "ku"], "rho": ["ri", "ra", "re"], "sigma": ["su", "si", "so", "sa"]}
TINY_CLF = ["--n-embd", 8, "--n-hidden", 32, "--batch-size", 32, "--warmup-steps", 10, "--log-interval", 20, "--device",
            "cpu"]


@pytest.fixture
def labeled_folder(tmp_path):
    """Three labels whose items are made of their own syllables (easy to tell apart), with repeats
    and one item that carries two labels, as the surnames do."""
    rng = random.Random(0)
    folder = tmp_path / "labeled"
    folder.mkdir()
    for label, syllables in SYLLABLES.items():
        n = {"kappa": 200, "rho": 60, "sigma": 40}[label]
        items = {"".join(rng.choice(syllables) for _ in range(rng.randint(2, 5))) for _ in range(n)}
        lines = sorted(items) + sorted(items)[:5] + ["ambo"]  # repeated pairs, and "ambo" in every class
        (folder / f"{label}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.fixture
def lm_run(tmp_path, labeled_folder):
    """A tiny language model pretrained on the items of the labeled folder."""
    result = run("train", "--model", "lstm", "--data", labeled_folder, "--out-dir", tmp_path,
                 "--name", "lm", "--max-steps", 60, "--eval-interval", 30, *TINY_CLF)
    assert result.exit_code == 0, result.output
    return tmp_path / "lm"


@pytest.fixture
def lm_backward_run(tmp_path, labeled_folder):
    """The same language model, reading each item right to left: a bidirectional classifier's second body."""
    result = run("train", "--model", "lstm", "--data", labeled_folder, "--out-dir", tmp_path, "--name", "lm-backward",
                 "--reverse", "true", "--max-steps", 60, "--eval-interval", 30, *TINY_CLF)
    assert result.exit_code == 0, result.output
    return tmp_path / "lm-backward"


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A tiny finished run on the shipped names corpus, shared by the tests: copy it before changing it."""
    from click.testing import CliRunner

    from makemore.cli import cli

    out = tmp_path_factory.mktemp("runs")
    result = CliRunner().invoke(cli, ["train", "--out-dir", str(out), "--name", "tiny", *tiny_args()])
    assert result.exit_code == 0, result.output
    return out / "tiny"


def run(*args):
    """Run the makemore CLI in-process, as a user would type it."""
    from click.testing import CliRunner

    from makemore.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_user_error(result, *fragments):
    """One line on stderr that names the problem (each fragment), exit status 2, no traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    if os.environ.get("MAKEMORE_MATRIX_LOG"):  # the hardening matrix: case, exit status and message, for the record
        case = os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0]
        with open(os.environ["MAKEMORE_MATRIX_LOG"], "a", encoding="utf-8") as f:
            f.write(f"{case}\texit {result.exit_code}\t{lines[0]}\n")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def snapshot(folder):
    """Every file under a folder with its bytes' hash, to prove that nothing was changed."""
    import hashlib

    return {
        p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }
