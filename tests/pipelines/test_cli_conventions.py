"""CLI conventions across every command: one meaning per option name, STORE positional, every
default in --help, -q/--quiet and --json, deprecated spellings, exit statuses, progress without a
terminal, and convert.tsv's escaping and unlistable folders."""
import argparse
import csv
import fcntl
import os
import pty
import shutil
import struct
import subprocess
import sys
import termios

from odg.pipelines.cli import build_parser
from odg.pipelines.cli import main as odg_main
from odg.pipelines.progress import STEP_SECONDS, LineProgress

from .trees import VEC

ODG = [sys.executable, "-m", "odg"]


def odg(*args):
    return odg_main([str(a) for a in args])


def _parsers(parser=None, path=()):
    """(command path, parser) of every command, e.g. (("build", "imagenet"), p)."""
    parser = parser or build_parser()
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
    for sub in subs:
        for name, p in sub.choices.items():
            yield from _parsers(p, path + (name,))


def _visible(p):
    return [a for a in p._actions if a.help != argparse.SUPPRESS and not isinstance(a, argparse._HelpAction)]


def test_one_meaning_per_option_name():
    meaning = {}
    for path, p in _parsers():
        for a in _visible(p):
            for opt in a.option_strings:
                meaning.setdefault(opt, {}).setdefault((a.dest, getattr(a.type, "__name__", a.type)), []).append(path)
    clashes = {opt: m for opt, m in meaning.items() if len(m) > 1}
    assert not clashes, clashes
    assert "--workers" not in meaning and "--store" not in meaning
    dask = {p for (d, _), paths in meaning["--dask-workers"].items() for p in paths}
    assert dask == {("build", "imagenet"), ("build", "ucf101"), ("import", "es-imagenet"), ("import", "es-ucf101"),
                    ("stats",), ("demo",), ("compare",)}
    assert {p for paths in meaning["--threads"].values() for p in paths} >= {("convert",), ("train",)}
    assert {p for paths in meaning["--loader-workers"].values() for p in paths} == {("train",), ("pretrain", "ann")}
    assert {p for paths in meaning["--fold"].values() for p in paths} == {("build", "ucf101")}


def test_store_positional_everywhere():
    with_store = [(path, a) for path, p in _parsers() for a in p._actions if a.dest == "store"]
    assert len(with_store) >= 10
    for path, a in with_store:
        assert not a.option_strings and a.metavar == "STORE", path


def test_every_default_shown_in_help():
    for path, p in _parsers():
        fmt = p._get_formatter()
        for a in _visible(p):
            if a.default is None or a.default is False or a.default is argparse.SUPPRESS:
                continue
            assert "default" in fmt._expand_help(a), (path, a.option_strings or a.dest)


def test_quiet_and_json_on_the_data_commands():
    parsers = dict(_parsers())
    for path in (("build", "imagenet"), ("build", "ucf101"), ("verify",), ("stats",), ("import", "es-imagenet"),
                 ("import", "es-ucf101"), ("export", "es-imagenet"), ("export", "es-ucf101")):
        opts = {o for a in parsers[path]._actions for o in a.option_strings}
        assert {"-q", "--quiet", "--json"} <= opts, path


def test_deprecated_spellings_still_work(capsys):
    p = build_parser()
    cases = [(["convert", "x.jpg", "--out", "o", "--workers", "3"], "threads", 3, "--threads"),
             (["build", "imagenet", "R", "S", "--split", "val", "--workers", "2"], "dask_workers", 2, "--dask-workers"),
             (["build", "ucf101", "R", "S", "--split", "2"], "fold", 2, "--fold"),
             (["stats", "S", "--out", "o", "--workers", "1"], "dask_workers", 1, "--dask-workers"),
             (["train", "--store", "S"], "store_option", "S", "the STORE argument"),
             (["train", "S", "--workers", "4"], "loader_workers", 4, "--loader-workers")]
    for argv, dest, value, new in cases:
        capsys.readouterr()
        assert getattr(p.parse_args(argv), dest) == value
        assert capsys.readouterr().err == f"odg: note: {argv[-2]} is deprecated; use {new}\n"
    a = p.parse_args(["build", "ucf101", "R", "S"])
    assert a.fold == 1 and a.dask_workers is None and not hasattr(a, "workers")


def test_train_takes_store_positionally(tmp_path, capsys):
    assert odg("train", "--model", "liaf_tiny") == 2
    assert "STORE is required" in capsys.readouterr().err
    missing = tmp_path / "none.zarr"
    assert odg("train", missing, "--model", "liaf_tiny") == 2
    assert "none.zarr" in capsys.readouterr().err
    assert odg("train", "--store", missing, "--model", "liaf_tiny") == 2
    err = capsys.readouterr().err
    assert "--store is deprecated" in err and "none.zarr" in err


# -- exit statuses (130: test_hostile_input's Ctrl-C test; 1 for damage: test_build's verify test) --------

def _run(*args):
    return subprocess.run(ODG + [str(a) for a in args], capture_output=True, text=True, timeout=300)


def test_exit_status_0_done(tmp_path):
    r = _run("convert", os.path.join(VEC, "images", "coffee.png"), "--out", tmp_path / "o", "-q")
    assert r.returncode == 0 and r.stderr == ""


def test_exit_status_1_failed(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    r = _run("convert", bad, "--out", tmp_path / "o", "-q")
    assert r.returncode == 1 and r.stderr.splitlines()[-1] == "odg: error: no input could be read"


def test_exit_status_2_usage_and_refusals(tmp_path):
    r = _run("convert", "x.jpg")                                             # --out missing
    assert r.returncode == 2 and r.stderr.splitlines()[-1] == \
        "odg: error: convert: the following arguments are required: --out"
    r = _run("info", tmp_path / "nothing.zarr")                              # refused: no store there
    assert r.returncode == 2 and r.stderr.splitlines() == [f"odg: error: no store at {tmp_path / 'nothing.zarr'}"]
    r = _run("convert", os.path.join(VEC, "images", "coffee.png"), "--out", tmp_path / "o", "--threshold", 5)
    assert r.returncode == 2 and r.stderr.splitlines() == [
        "odg: error: --threshold: threshold must lie in (0, 1] (a fraction of the 8-bit range), got 5.0"]
    (tmp_path / "afile").write_text("x")
    r = _run("export", "es-imagenet", tmp_path / "nothing.zarr", tmp_path / "afile" / "sub")
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1


# -- progress -----------------------------------------------------------------------------------------

def test_progress_lines_every_few_percent_or_minute():
    class Clock:
        t = 0.0

        def __call__(self):
            return self.t
    import io
    out, clock = io.StringIO(), Clock()
    bar = LineProgress(1000, "build train", "sample", stream=out, clock=clock)
    for _ in range(1000):
        clock.t += 0.01
        bar.update()
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 20 and lines[0] == "build train: 50/1000 samples (5%), 100 samples/s, 10s left"
    assert lines[-1] == "build train: 1000/1000 samples (100%), 100 samples/s, 10s in all"
    out, clock = io.StringIO(), Clock()
    bar = LineProgress(10 ** 6, "stats", "sample", stream=out, clock=clock)
    for _ in range(3):
        clock.t += STEP_SECONDS
        bar.update()
    assert len(out.getvalue().splitlines()) == 3          # a line a minute, whatever the percentage


def test_progress_without_and_with_a_terminal(tmp_path):
    src = os.path.join(VEC, "images")
    r = _run("convert", src, "--out", tmp_path / "a", "--threads", 1)
    assert r.returncode == 0 and "\r" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("convert: ")]
    assert lines and lines[-1].startswith("convert: 5/5 images (100%)")
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))     # a 100-column terminal
    p = subprocess.Popen(ODG + ["convert", src, "--out", str(tmp_path / "b"), "--threads", "1"],
                         stdout=subprocess.DEVNULL, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    assert p.wait(120) == 0
    os.close(master)
    tty = b"".join(chunks).decode(errors="replace")
    assert "\r" in tty and "convert: 100%|" in tty and "5/5" in tty and "image/s" in tty


# -- convert.tsv ---------------------------------------------------------------------------------------

def test_convert_tsv_escapes_names_and_reports_unlistable_folders(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    odd = ["tab\there.png", "new\nline.png", 'quo"te.png', "plain.png"]
    for name in odd:
        shutil.copy(os.path.join(VEC, "images", "coffee.png"), src / name)
    # a folder that cannot be listed, whoever runs the test: its path is longer than PATH_MAX
    fd = os.open(src, os.O_RDONLY)
    try:
        for _ in range(18):
            os.mkdir("d" * 250, dir_fd=fd)
            new = os.open("d" * 250, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = new
    finally:
        os.close(fd)
    out = tmp_path / "out"
    assert odg("convert", src, "--out", out, "-q") == 1
    assert "could not be listed" in capsys.readouterr().err.splitlines()[-1]
    with open(out / "convert.tsv", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    assert rows[0] == ["input", "status", "events", "on", "off", "a", "b", "output_or_reason"]
    by = {os.path.basename(r[0]): r for r in rows[1:] if r[1] != "unlistable"}
    assert sorted(by) == sorted(odd)
    for name in odd:
        assert by[name][1] == "kept" and by[name][-1] == name[:-4] + ".npz" and (out / (name[:-4] + ".npz")).is_file()
    unl = [r for r in rows[1:] if r[1] == "unlistable"]
    assert len(unl) == 1 and "cannot list folder" in unl[0][-1] and unl[0][0].startswith(str(src))


def test_a_closed_pipe_ends_quietly():
    """`odg models list | head -1`: the reader closes the pipe early; odg stops without an error line."""
    for args in (["models", "list"], ["models", "summary", "liaf_resnet18"]):
        p = subprocess.Popen(ODG + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        p.stdout.close()                        # gone before odg writes a line
        err = p.stderr.read().decode()
        assert p.wait(timeout=120) in (0, 141) and "rror" not in err, (args, err)
