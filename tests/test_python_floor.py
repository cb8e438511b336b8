"""CI runs one Python; the package promises every Python from requires-python on. vermin reads the
syntax, modules and functions that the code uses and gives the oldest Python that has them all."""
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_code_needs_no_python_newer_than_requires_python():
    floor = re.fullmatch(r">=(3\.\d+)", importlib.metadata.metadata("makemore")["Requires-Python"]).group(1)
    folders = [str(ROOT / name) for name in ("makemore", "tests", "benchmarks", "scripts")]
    vermin = "import sys, vermin; sys.argv[0] = 'vermin'; sys.exit(vermin.main())"
    result = subprocess.run([sys.executable, "-c", vermin, "--no-tips", "--violations", f"-t={floor}-", *folders],
                            check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Minimum required versions: {floor}" in result.stdout
