"""Stores on S3: `odg build` into and reads from an S3-compatible store served locally (moto's server on
127.0.0.1, a real subprocess), through `--scheduler` with a real `dask scheduler` and two `dask worker`
processes that get the endpoint and credentials from their environment, as a user's workers would.
And the one-line errors when a remote protocol's package (an odg extra) is missing."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from odg import odg_events

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "pipelines" / "data" / "sample"
BUCKET = "odg-test"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    env.update(extra)
    return env


def _stop(groups):
    """SIGTERM each group of processes together, waiting for it before the next (workers before the
    scheduler they would try to reach, the scheduler before the store)."""
    for procs in groups:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _wait(what: str, ready, procs, timeout: float = 60):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if any(p.poll() is not None for p in procs):
            raise RuntimeError(f"a process exited while waiting for {what}")
        if ready():
            return
        time.sleep(0.2)
    raise TimeoutError(f"{what} not ready after {timeout} s")


def _http_up(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def s3_cluster(tmp_path_factory):
    """(scheduler address, environment with the S3 endpoint and credentials): moto's S3 server, a dask
    scheduler and two dask workers, all subprocesses on 127.0.0.1; stopped after the module."""
    tmp = tmp_path_factory.mktemp("s3")
    endpoint = f"http://127.0.0.1:{_free_port()}"
    env = _env(AWS_ENDPOINT_URL=endpoint, **CREDENTIALS)
    log = open(tmp / "processes.log", "wb")
    procs = [subprocess.Popen([sys.executable, "-c", "import sys; from moto.server import main; main(sys.argv[1:])",
                               "-H", "127.0.0.1", "-p", endpoint.rsplit(":", 1)[1]],
                              env=env, stdout=log, stderr=subprocess.STDOUT)]
    try:
        _wait("moto's S3 server", lambda: _http_up(endpoint), procs)
        sched_file = tmp / "scheduler.json"
        procs.append(subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
                                       "--no-dashboard", "--scheduler-file", str(sched_file)],
                                      env=env, stdout=log, stderr=subprocess.STDOUT))
        _wait("the dask scheduler", sched_file.exists, procs)
        for _ in range(2):
            procs.append(subprocess.Popen([sys.executable, "-m", "dask", "worker", "--scheduler-file", str(sched_file),
                                           "--nthreads", "1", "--no-dashboard", "--no-nanny"],
                                          env=env, stdout=log, stderr=subprocess.STDOUT))
        from distributed import Client
        with Client(scheduler_file=str(sched_file), timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
            address = client.scheduler.address
        yield address, env
    finally:
        _stop([procs[2:], procs[1:2], procs[:1]])
        log.close()


def test_build_and_read_an_s3_store_on_a_dask_cluster(s3_cluster, monkeypatch, capsys):
    """The build's client and the reads run in this process, with the endpoint in its environment."""
    import s3fs

    from odg.pipelines.cli import main as odg
    address, env = s3_cluster
    for k in ("AWS_ENDPOINT_URL", *CREDENTIALS):
        monkeypatch.setenv(k, env[k])
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    fs.mkdir(BUCKET)
    url = f"s3://{BUCKET}/es-imagenet.zarr"
    assert odg(["build", "imagenet", str(SAMPLE), url, "--split", "train", "--scheduler", address, "--shard-size", "4",
                "--quiet"]) == 0
    kept = [p.relative_to(SAMPLE / "train").as_posix() for p in sorted((SAMPLE / "train").glob("*/*.JPEG"))
            if odg_events(cv2.imread(str(p), cv2.IMREAD_COLOR)).kept]
    out = capsys.readouterr().out
    assert f"7 inputs: {len(kept)} kept, {7 - len(kept)} discarded" in out and "2 shards built" in out
    assert fs.exists(f"{BUCKET}/es-imagenet.zarr/train/words/zarr.json")
    # both workers wrote shards: each imported the store writer (the client never runs a shard)
    from distributed import Client
    with Client(address, timeout="30s") as client:
        wrote = client.run(lambda: "odg.pipelines.store.writer" in sys.modules)
    assert len(wrote) == 2 and all(wrote.values())

    # read back here, through the store reader, the dataset and the CLI
    from odg.models import ESImageNet
    from odg.pipelines.imagenet import load_classes
    from odg.pipelines.store import open_store
    sr = open_store(url)["train"]
    wnids = load_classes().wnids
    assert len(sr) == 7 and sr.complete
    for i in range(len(sr)):
        name = str(sr.array("name")[i])
        assert wnids[sr.label(i)] == name.split("/")[0]
        want = odg_events(cv2.imread(str(SAMPLE / "train" / name), cv2.IMREAD_COLOR))
        assert sr.sample(i).status == ("kept" if name in kept else "discarded")
        assert np.array_equal(sr.events(i), want.events) and sr.shapes[i].tolist() == list(want.shape)
    ds = ESImageNet(url)
    assert len(ds) == len(kept) and np.array_equal(ds[3][0].numpy(), sr.frames(int(ds.indices[3])))
    assert odg(["verify", url]) == 0 and "store OK" in capsys.readouterr().out
    assert odg(["info", url]) == 0 and "train" in capsys.readouterr().out
    # a bucket that does not exist: refused in one line before any task runs
    assert odg(["build", "imagenet", str(SAMPLE), "s3://no-such-bucket/es.zarr", "--split", "train",
                "--scheduler", address, "--quiet"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "odg: error: cannot create a store at s3://no-such-bucket/es.zarr: The specified bucket does not exist"]


# runs odg's commands in one process in which the modules named in argv[1] cannot be imported;
# prints [[status, stderr], ...]
BLOCKED = """
import contextlib, io, json, sys
for name in json.loads(sys.argv[1]):
    sys.modules[name] = None
from odg.pipelines.cli import main
out = []
for args in json.loads(sys.argv[2]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        out.append([main(args), err.getvalue()])
print(json.dumps(out))
"""


def test_missing_filesystem_package_names_the_extra(tmp_path):
    """Every command that opens a store: exit 2 and one line `odg: error: ...` naming `odg[EXTRA]`,
    with s3fs and gcsfs made unimportable in that process (whether or not they are installed here)."""
    commands, want = [], []
    for url, module, extra in (("s3://bucket/es.zarr", "s3fs", "s3"), ("gs://bucket/es.zarr", "gcsfs", "gcs"),
                               ("gcs://bucket/es.zarr", "gcsfs", "gcs")):
        for args in (["build", "imagenet", str(SAMPLE), url, "--split", "train", "--dask-workers", "1", "--quiet"],
                     ["info", url], ["verify", url], ["stats", url, "--out", str(tmp_path / "r")],
                     ["export", "es-imagenet", url, str(tmp_path / "x")], ["train", url, "--model", "lif_tiny"]):
            commands.append(args)
            want.append((module, extra))
    r = subprocess.run([sys.executable, "-c", BLOCKED, json.dumps(["s3fs", "gcsfs"]), json.dumps(commands)],
                       env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    results = json.loads(r.stdout.strip().splitlines()[-1])
    assert len(results) == len(commands)
    for args, (module, extra), (status, err) in zip(commands, want, results):
        lines = err.strip().splitlines()
        assert status == 2 and len(lines) == 1, (args, err)
        assert lines[0].startswith("odg: error: ") and f"pip install 'odg[{extra}]'" in lines[0] and module in lines[0]


def test_unknown_protocol_is_one_line(capsys):
    from odg.pipelines.cli import main as odg
    assert odg(["info", "nosuchfs://bucket/es.zarr"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "odg: error: cannot open nosuchfs:// stores: Protocol not known: nosuchfs"]
