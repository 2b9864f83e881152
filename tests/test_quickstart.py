"""The README's Quickstart is two commands, and `.ci/run` runs the second one as written."""
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def quickstart() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"## Quickstart\s+```\n(.*?)```", text, re.S)
    assert block, "README.md has no Quickstart code block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_two_commands_and_ci_runs_the_second():
    demo, tests = quickstart()
    assert demo.startswith("pip install ") and demo.endswith("odg demo")
    assert tests.startswith("pip install ") and tests.endswith("python -m pytest") and '".[test]"' in tests
    assert "--index-url https://download.pytorch.org/whl/cpu" in tests       # torch's CPU build
    ci = [line for line in (REPO / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert ci[-1] == tests
