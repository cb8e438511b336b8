"""Every notebook in notebooks/ runs top to bottom without an error (cells tagged skip-execution, such
as the one that starts TensorBoard, are left out), in a folder of its own; and none is committed with
outputs, so that what one reads is what the code makes now."""
import re
import shutil
import time

import nbformat
import pytest
from conftest import ROOT, SHARED
from nbclient import NotebookClient

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
NEEDS_SHARED = {"3-lstm-against-mlp.ipynb"}  # reads tiny Shakespeare
DRAWS = re.compile(r"\bplot_loss\(|\bImage\(|\bplt\.|\.plot\(")  # a cell that shows a figure


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path):
    if path.name in NEEDS_SHARED and not (SHARED / "tinyshakespeare.txt").exists():
        pytest.skip(f"reference corpora not in {SHARED}")
    book = nbformat.read(path, as_version=4)
    shutil.copy(path, tmp_path)
    start = time.perf_counter()
    NotebookClient(book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    print(f"{path.name}: {time.perf_counter() - start:.0f} s")
    # every cell that draws shows its figure (a backend switched under the notebook would leave it blank)
    drawing = [cell for cell in book.cells if cell.cell_type == "code" and DRAWS.search(cell.source)]
    blank = [cell.source.splitlines()[0] for cell in drawing
             if not any("image/png" in output.get("data", {}) for output in cell.outputs)]
    assert not blank, f"cells that draw but show no figure: {blank}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_without_outputs(path):
    book = nbformat.read(path, as_version=4)
    code = [cell for cell in book.cells if cell.cell_type == "code"]
    assert all(not cell.get("outputs") and not cell.get("execution_count") for cell in code)


def test_notebooks_are_there():
    assert [p.name for p in NOTEBOOKS] == ["1-bigram-and-mlp.ipynb", "2-your-own-mlp.ipynb",
                                            "3-lstm-against-mlp.ipynb", "4-sweep.ipynb",
                                            "5-pretrain-then-finetune.ipynb", "6-text-classification.ipynb"]
