"""The documentation's code runs: docs/STORE.md's plain zarr-python reader gives the reader's frames."""
import os
import re

import numpy as np

from odg.pipelines.store import open_store

from .trees import vector_tree

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def test_store_md_plain_zarr_snippet(tmp_path):
    from odg.pipelines.cli import main
    vector_tree(str(tmp_path / "in"))
    url = str(tmp_path / "es-imagenet.zarr")
    assert main(["build", "imagenet", str(tmp_path / "in"), url, "--split", "train", "--dask-workers", "1", "--quiet"]) == 0
    text = open(os.path.join(ROOT, "docs", "STORE.md")).read()
    code = re.findall(r"```python\n(.*?)```", text, re.S)[0]
    code = code.replace('"es-imagenet.zarr"', repr(url)).replace('g["val"]', 'g["train"]')
    sr = open_store(url)["train"]
    for i in range(len(sr)):
        ns = {}
        exec(code.replace("i = 0", f"i = {i}"), ns)
        if ns["status"] != 2:
            np.testing.assert_array_equal(ns["frames"], sr.frames(i))
            assert ns["label"] == sr.label(i)
