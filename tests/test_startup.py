"""The command line answers --help and bad options without loading torch (about a second to import)."""
import subprocess
import sys

import pytest

from makemore.cli import cli

PROBE = """
import sys
sys.argv = ["makemore", *sys.argv[1:]]
from makemore.cli import main
try:
    main()
except SystemExit as e:
    code = e.code
print("exit", code, "torch" in sys.modules, file=sys.stderr)
"""


def run_cli(*args):
    """(exit status, whether torch was imported, stderr) of `makemore ARGS` in a fresh interpreter."""
    command = [sys.executable, "-c", PROBE, *args]
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=120)
    *lines, last = done.stderr.strip().splitlines()
    _, code, torch_loaded = last.split()
    return int(code or 0), torch_loaded == "True", "\n".join(lines)


@pytest.mark.parametrize("command", [[], *([name] for name in cli.commands)])
def test_help_does_not_load_torch(command):
    code, torch_loaded, _ = run_cli(*command, "--help")
    assert code == 0
    assert not torch_loaded


@pytest.mark.parametrize("args", [
    ["train", "--data", "/no/such/file.txt"],
    ["train", "--model", "nope"],
    ["train", "--n-hidden", "0"],
    ["train", "--threads", "0"],
    ["sweep", "--param", "lr"],
])
def test_bad_options_are_refused_before_torch_loads(args):
    code, torch_loaded, stderr = run_cli(*args)
    assert code == 2
    assert stderr.startswith("error: ") and len(stderr.splitlines()) == 1
    assert not torch_loaded


def test_import_makemore_loads_the_library_on_first_use():
    code = "import sys, makemore; a = 'torch' in sys.modules; makemore.train; print(a, 'torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["False", "True"]
