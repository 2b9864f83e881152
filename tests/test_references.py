"""Every file the documentation, the CLI's help, `odg train --list-presets` and the package sources
(the statistics report's templates among them) refer to exists in the repository.

Checked in the README, every Markdown file, CITATION.cff, the sources of odg/, pipelines/, models/,
benchmarks/ and .ci/run, and in the rendered help of every command:

- a `*.md` or `*.cff` name, or a path that starts with one of the repository's top-level folders
  (`docs/...`, `tests/data/...`, `models/...`, wildcards and `<placeholders>` allowed), names a
  file or folder that exists, relative to the referring file or to the repository root;
- a Markdown link `[text](target)` to a local target resolves relative to its file;
- nothing names the project's reference notes that are not part of the repository (`ODG-SPEC`),
  or a path of the development machines (`/work/...`).
"""
from __future__ import annotations

import argparse
import glob
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TOP = ("odg", "pipelines", "models", "docs", "tests", "benchmarks", ".ci")
URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+")
PATH = re.compile(r"(?<![\w./@:-])((?:%s)/(?:[\w.*/-]|<\w+>)+|"
                  r"(?:\.{1,2}/)*(?:[\w.*<>-]+/)*[\w.*<>-]+(?:\.(?:md|cff)\b|/))" % "|".join(re.escape(t) for t in TOP))
LINK = re.compile(r"\]\(([^)\s]+)\)")
FORBIDDEN = (re.compile(r"ODG-SPEC"), re.compile(r"(?<![\w.])/work/"))


def _tracked() -> list[Path]:
    out = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True)
    if out.returncode == 0 and out.stdout.strip():
        names = out.stdout.split()
    else:               # not a git checkout (an unpacked sdist): every file
        names = [str(p.relative_to(REPO)) for p in REPO.rglob("*") if p.is_file()]
    return [REPO / n for n in names]


def documents() -> list[Path]:
    docs = []
    for p in _tracked():
        rel = p.relative_to(REPO).as_posix()
        if p.suffix in (".md", ".cff") or rel == ".ci/run" or (
                p.suffix in (".py", ".sh") and rel.split("/")[0] in ("odg", "pipelines", "models", "benchmarks")):
            docs.append(p)
    return sorted(docs)


def _exists(ref: str, base: Path) -> bool:
    ref = ref.rstrip("/") or "/"
    pattern = re.sub(r"<[^>]*>", "*", ref)
    for root in (base, REPO):
        if glob.glob(str(root / pattern)):
            return True
    return False


def problems(text: str, base: Path) -> list[str]:
    """References in `text` (of a file in folder `base`) that name nothing in the repository."""
    found = [f"names {m.group(0)!r}, which is not in the repository" for rx in FORBIDDEN for m in rx.finditer(text)]
    plain = URL.sub(" ", text)
    for m in PATH.finditer(plain):
        ref = m.group(1).rstrip(".,;:)`'\"")
        top = ref.split("/")[0]
        if ref.endswith("/") and top not in TOP:
            continue                  # a folder of the user's (`ROOT/train/`), not a repository path
        if not _exists(ref, base):
            found.append(f"refers to {ref!r}, which does not exist")
    for m in LINK.finditer(text):
        target = m.group(1).split("#")[0]
        if target and not URL.match(target) and not (base / target).exists():
            found.append(f"links to {target!r}, which does not exist")
    return found


@pytest.mark.parametrize("path", documents(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_file_references_exist(path):
    assert problems(path.read_text(encoding="utf-8"), path.parent) == []


def _help_texts(parser: argparse.ArgumentParser, prefix: str = "odg"):
    yield prefix, parser.format_help()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _help_texts(sub, f"{prefix} {name}")


def test_cli_help_and_presets_references_exist(capsys):
    from odg.pipelines.cli import build_parser, main
    texts = dict(_help_texts(build_parser()))
    assert len(texts) > 10 and "odg build imagenet" in texts
    assert main(["train", "--list-presets"]) == 0
    texts["odg train --list-presets"] = capsys.readouterr().out
    assert "es-imagenet-resnet18" in texts["odg train --list-presets"]
    bad = {name: p for name, text in texts.items() if (p := problems(text, REPO))}
    assert bad == {}


def test_the_checker_catches_bad_references(tmp_path):
    """The rules themselves: a missing file, a missing link target, the notes' name, a machine path."""
    assert problems("see docs/ALGORITHMS.md and [models](docs/MODELS.md)", REPO) == []
    assert problems("frames in `tests/data/ucf/frames/<clip>/*.jpg`, ROOT/train/ of yours", REPO) == []
    assert len(problems("see docs/NOPE.md", REPO)) == 1
    assert len(problems("as MODELS.md says", REPO)) == 1                  # only docs/MODELS.md exists
    assert len(problems("[the spec](docs/SPEC.md)", REPO)) == 2           # the name and the link
    assert len(problems("written from ODG-SPEC", REPO)) == 1
    assert len(problems("python /work/venv/bin/odg", REPO)) == 1
    assert len(problems("https://example.org/README.md is a URL", REPO)) == 0
    assert problems("models/no_such_module.py", REPO) != []
