"""One installed name: `odg`, `odg.pipelines`, `odg.models`, and nothing that collides with a user's own
`models/` or `pipelines/` packages."""
import os
import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def _packages_on_disk() -> set[str]:
    out = set()
    for folder, name in (("odg", "odg"), ("pipelines", "odg.pipelines"), ("models", "odg.models")):
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            out.add(".".join([name, *rel.parts]))
    return out


def test_pyproject_lists_every_package_under_odg():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert set(cfg["packages"]) == _packages_on_disk()
    assert cfg["package-dir"] == {"odg": "odg", "odg.pipelines": "pipelines", "odg.models": "models"}
    assert all(p == "odg" or p.startswith("odg.") for p in cfg["packages"])


def test_documented_imports_and_cli_beside_a_users_own_models_and_pipelines(tmp_path):
    """A research repository with its own `models/` and `pipelines/`: odg's imports and CLI still work,
    and the user's packages are the ones `import models` / `import pipelines` find."""
    for pkg in ("models", "pipelines"):
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text(f"MINE = {pkg!r}\n")
    code = (
        "import models, pipelines\n"
        "assert models.MINE == 'models' and pipelines.MINE == 'pipelines'\n"
        "from odg import odg_events, ODGParams\n"
        "from odg.pipelines.store import open_store\n"
        "from odg.models.data import ESDataset, unpack_batch\n"
        "import odg.models\n"
        "assert odg.models.build('lif_resnet18', num_classes=3) is not None\n"
        "print('ok')\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]
    for cmd in ([sys.executable, "-m", "odg", "--help"], [os.path.join(os.path.dirname(sys.executable), "odg"), "--help"]):
        r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=env)
        assert r.returncode == 0 and "usage: odg" in r.stdout, r.stderr[-2000:]
        assert "build" in r.stdout and "train" in r.stdout
