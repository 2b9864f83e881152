"""Dask builds: inputs -> converted samples -> a store split, one task per shard.

Each task converts `shard_size` consecutive inputs and writes them as whole chunks of every
array, then the shard's completion marker. The embedded default is a `LocalCluster` of worker
processes (one thread each); `scheduler=` runs the same tasks on an existing
`dask.distributed` cluster. The output depends only on the inputs and settings, never on the
number of workers or on how often a build was interrupted and resumed.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import card
from .outcome import Outcome, SourceItem
from .store import writer
from .store.schema import DISCARDED, KEPT, REJECTED


@dataclass(frozen=True)
class BuildSpec:
    """What to build: where, which split, which inputs, how to convert one input."""
    url: str
    split: str
    kind: str
    items: list[SourceItem]     # each with .name, .label, .number
    convert: Callable[[SourceItem], Outcome]    # picklable (see imagenet.convert_item)
    payload_shape: tuple
    payload_dtype: object
    params: dict
    classes: list
    source: dict
    shard_size: int = 256
    settings: dict = field(default_factory=dict)    # command-line option -> value, recorded for --resume


@dataclass
class BuildReport:
    samples: int
    kept: int
    discarded: int
    rejected: int
    shards_built: int
    shards_skipped: int
    seconds: float
    failed: list


def _build_shard(spec_small: dict, shard: int, items: list[SourceItem],
                 convert: Callable[[SourceItem], Outcome]) -> dict:
    """Worker task: convert `items` and write shard `shard`. Returns the shard summary."""
    payload_shape = tuple(spec_small["payload_shape"])
    n = len(items)
    words = np.zeros((n,) + payload_shape, spec_small["payload_dtype"])
    status = np.zeros(n, np.int8)
    shape = np.zeros((n, 2), np.int16)
    count = np.zeros((n, 2), np.int32)
    reason = []
    for j, it in enumerate(items):
        r = convert(it)
        if not isinstance(r, Outcome):
            raise TypeError(f"the conversion of {it.name} returned {type(r).__name__}, not an Outcome")
        status[j] = r.status
        reason.append(r.reason)
        if r.converted:
            shape[j] = r.shape
            count[j] = r.count
            words[j] = r.words
    columns = {
        "label": np.array([it.label for it in items], np.int16),
        "number": np.array([it.number for it in items], np.int32),
        "name": np.array([it.name for it in items], dtype=str),
        "status": status, "reason": np.array(reason, dtype=str),
        "shape": shape, "count": count, "words": words,
    }
    summary = {"kept": int((status == KEPT).sum()), "discarded": int((status == DISCARDED).sum()),
               "rejected": int((status == REJECTED).sum())}
    writer.SplitWriter(spec_small["url"], spec_small["split"]).write_shard(shard, columns, summary)
    return summary


def json_value(v):
    """A JSON form of a conversion argument (parameters dataclasses by their `to_dict`)."""
    if hasattr(v, "to_dict"):
        return v.to_dict()
    if dataclasses.is_dataclass(v):
        return dataclasses.asdict(v)
    if isinstance(v, (tuple, list)):
        return [json_value(x) for x in v]
    if isinstance(v, dict):
        return {str(k): json_value(x) for k, x in v.items()}
    return v if v is None or isinstance(v, (bool, int, float, str)) else repr(v)


def convert_description(convert) -> dict:
    """What the conversion of one input is: its function and every argument bound to it (a
    `functools.partial`'s keywords, e.g. `max_pixels`, `use_frames`, `size`)."""
    func = getattr(convert, "func", convert)
    return {"function": f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}",
            "args": json_value(list(getattr(convert, "args", ()))),
            "keywords": json_value(dict(getattr(convert, "keywords", {}) or {}))}


def plan_digest(spec: BuildSpec) -> dict:
    """Everything that changes the output: the inputs (their names, labels, numbers, in order),
    kind, conversion parameters and function with its arguments, shard size, payload, the source
    paths. A resume must match it. (The command's options are recorded beside it, for --resume
    to reuse: `SplitWriter.settings`.)"""
    h = hashlib.sha256()
    for it in spec.items:
        h.update(f"{it.name}\t{it.label}\t{it.number}\n".encode())
    return {"items": len(spec.items), "sha256": h.hexdigest(), "shard_size": spec.shard_size,
            "kind": spec.kind, "params": spec.params, "convert": convert_description(spec.convert),
            "payload": {"shape": list(spec.payload_shape), "dtype": np.dtype(spec.payload_dtype).str},
            "sources": card.source_paths(spec.source)}


_PATH_FIELDS = ("path", "video", "frames", "folder")


def _relative_path(items) -> str | None:
    """A relative local path among the first input's files (a worker would resolve it in its own
    working directory), or None."""
    for f in _PATH_FIELDS:
        v = getattr(items[0], f, None)
        if isinstance(v, str) and v and "://" not in v and not os.path.isabs(v):
            return v
    return None


CONNECT_TIMEOUT = 20.0            # seconds for the whole handshake with an external scheduler
_SCHEMES = ("tcp", "tls", "ws", "wss", "ucx")
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)$")


def scheduler_address(text: str) -> str:
    """`text` checked and normalised to `protocol://host:port` (`host:port` means tcp).
    Raises ValueError saying what is wrong."""
    scheme, sep, rest = text.strip().partition("://")
    if not sep:
        scheme, rest = "tcp", text.strip()
    if scheme == "inproc" and rest:     # a scheduler in this very process (programs calling main())
        return f"inproc://{rest}"
    if scheme not in _SCHEMES:
        raise ValueError(f"unknown protocol {scheme + '://'!r} in {text!r} (one of {', '.join(_SCHEMES)})")
    host, colon, port = rest.rpartition(":")
    if not colon or not _HOST.match(host) or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not a scheduler address like tcp://HOST:8786")
    return f"{scheme}://{host}:{int(port)}"


def _check_scheduler(address: str, timeout: float) -> None:
    """Ask `address` who it is, all within `timeout` seconds (in a thread of its own, so that a
    server that accepts and never answers cannot hold the caller); raises StoreError."""
    import asyncio

    from distributed.comm import connect
    from distributed.security import Security

    async def identity():
        comm = await connect(address, timeout=timeout, **Security().get_connection_args("client"))
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()
    result = {}

    def ask():
        try:
            result["reply"] = asyncio.run(asyncio.wait_for(identity(), timeout))
        except BaseException as e:  # noqa: BLE001 - reported by the caller
            result["error"] = e
    t = threading.Thread(target=ask, name="odg-scheduler-handshake", daemon=True)
    t.start()
    t.join(timeout + 1.0)
    reply, err = result.get("reply"), result.get("error")
    if reply is None:
        why = "no answer" if t.is_alive() or isinstance(err, (TimeoutError, asyncio.TimeoutError)) else \
            (f"{err.strerror or err}" if isinstance(err, OSError) else f"{type(err).__name__}: {err}")
        raise writer.StoreError(f"cannot reach the Dask scheduler at {address} within {timeout:g} s: {why}")
    kind = reply.get("type") if isinstance(reply, dict) else None
    if kind != "Scheduler":
        raise writer.StoreError(f"{address} is not a Dask scheduler (it answered as {kind or 'something else'})")


@contextlib.contextmanager
def _sigint_ignored():
    """Start worker processes with Ctrl-C ignored (they inherit it), so that only this process
    answers it and closes them, with no tracebacks of theirs; a no-op outside the main thread.
    A Ctrl-C during the cluster's start-up (a second or two) is ignored too."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


@contextlib.contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None, quiet: bool = False,
                timeout: float = CONNECT_TIMEOUT):
    """A `distributed.Client`: on `scheduler` (an address, whose handshake must complete within
    `timeout` seconds) or on a new LocalCluster of `workers` processes. Raises StoreError when the
    scheduler cannot be reached. Distributed's own log lines (task tracebacks, retries) are
    silenced while the client is open: failures are reported by the caller, once."""
    import logging

    from distributed import Client, LocalCluster
    from distributed.utils import silence_logging_cmgr
    if scheduler:
        try:
            address = scheduler_address(scheduler)
        except ValueError as e:
            raise writer.StoreError(f"--scheduler: {e}") from None
        _check_scheduler(address, timeout)
        try:
            client = Client(address, timeout=f"{timeout}s")
        except (OSError, TimeoutError) as e:
            raise writer.StoreError(f"cannot reach the Dask scheduler at {address}: {e}") from None
        cluster = None
    else:
        import dask
        n = workers or os.cpu_count() or 1
        # Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536, which turns off glibc's dynamic mmap
        # threshold: every decoded image and words buffer is then a fresh mmap paid in page faults
        # (measured: decode CPU 0.54 -> 1.15 ms per image). Keep freed memory in the heap instead.
        with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": str(256 << 20),
                              "distributed.nanny.pre-spawn-environ.MALLOC_MMAP_THRESHOLD_": str(32 << 20)}), \
                _sigint_ignored():
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                                   silence_logs=logging.CRITICAL)
        client = Client(cluster)
    with silence_logging_cmgr(logging.CRITICAL):
        try:
            if not quiet:
                nw = len(client.scheduler_info(n_workers=-1)["workers"]) if scheduler else n
                where = scheduler or "a local cluster"
                link = client.dashboard_link if _has_dashboard() else "(install bokeh for the dashboard)"
                print(f"dask: {nw} workers on {where}; dashboard {link}", file=sys.stderr)
            yield client
        finally:
            client.close()
            if cluster is not None:
                cluster.close()


def _has_dashboard() -> bool:
    import importlib.util
    return importlib.util.find_spec("bokeh") is not None


def _dirs_to_create(w: writer.SplitWriter) -> list[str]:
    """The local folders the lock of `w` would create (store, split, `_odg`), outermost first."""
    lock_file = w.keys.local_path(f"{w.split}/{writer.LOCK_KEY}")
    if lock_file is None:
        return []
    out, d = [], os.path.dirname(lock_file)
    while not os.path.isdir(d):
        out.insert(0, d)
        d = os.path.dirname(d)
    return out


def run_build(spec: BuildSpec, workers: int | None = None, scheduler: str | None = None, resume: bool = False,
              progress: bool = True, client=None, connect_timeout: float = CONNECT_TIMEOUT) -> BuildReport:
    """Build (or resume) one split. Raises StoreError for refusals (not a store, existing split,
    lock, plan mismatch, an unreachable scheduler), leaving the store as it was. An external
    scheduler is connected to before the split's lock is taken, so a scheduler that does not
    answer never holds the lock. Every task gets the store's absolute URL; the split is marked
    complete only once every shard's valid marker is in that store."""
    from distributed import as_completed

    from .progress import progress_bar
    t0 = time.perf_counter()
    n = len(spec.items)
    if n == 0:
        raise writer.StoreError(f"no input files for split '{spec.split}'")
    rel = _relative_path(spec.items)
    if rel is not None:
        raise writer.StoreError(f"input path {rel!r} is relative: Dask workers would resolve it in their own "
                                "working directory; give absolute paths")
    w = writer.SplitWriter(spec.url, spec.split)
    spec = dataclasses.replace(spec, url=w.url)        # absolute: workers open it from their own directory
    from odg import __version__
    with contextlib.ExitStack() as remote:
        if client is None and scheduler:
            client = remote.enter_context(dask_client(scheduler=scheduler, quiet=not progress,
                                                      timeout=connect_timeout))
        w.check_store(spec.kind, spec.params)          # refusals before anything is written
        created = _dirs_to_create(w)
        # the lock comes before the split check, so a second build sees "being built", not "exists"
        w.lock()
        committed = made_root = False
        try:
            made_root = w.create_store(spec.kind, spec.params, spec.classes, __version__)
            plan = plan_digest(spec)
            resuming = w.check(plan, resume)            # refusals before any cluster starts
            K = spec.shard_size
            n_shards = -(-n // K)
            small = {"url": w.url, "split": spec.split, "payload_shape": list(spec.payload_shape),
                     "payload_dtype": np.dtype(spec.payload_dtype).str}
            totals = {"kept": 0, "discarded": 0, "rejected": 0}
            failed = []
            with (contextlib.nullcontext(client) if client is not None
                  else dask_client(workers, quiet=not progress)) as cl:
                committed = True
                if resuming:
                    w.remove_partial_files()
                    done = w.done_shards()
                else:
                    w.create(n, spec.shard_size, spec.payload_shape, spec.payload_dtype, plan, spec.source,
                             json_value(spec.settings))
                    done = set()
                digest = card.start_digest(cl, spec.url, spec.split, spec.source, spec.kind)   # beside the shards
                todo = [s for s in range(n_shards) if s not in done]
                futures = {}
                for s in todo:
                    fut = cl.submit(_build_shard, small, s, spec.items[s * K:(s + 1) * K], spec.convert,
                                    key=f"odg-shard-{spec.split}-{s}-{os.getpid()}-{time.time_ns()}", retries=2,
                                    pure=False)
                    futures[fut] = s
                with progress_bar(n, f"build {spec.split}", "sample", progress,
                                  initial=sum(min(K, n - s * K) for s in done)) as bar:
                    for fut in as_completed(futures):
                        s = futures[fut]
                        try:
                            summ = fut.result()
                            for k in totals:
                                totals[k] += summ[k]
                        except Exception as e:  # noqa: BLE001 - reported, the build goes on
                            failed.append((s, failure_text(e)))
                        bar.update(min(K, n - s * K))
                digest = card.finish_digest(spec.url, spec.split, digest)
            failed += _unmarked(w, set(todo) - {s for s, _ in failed})
            for s in done:
                m = w.marker(s).marker["summary"]
                for k in totals:
                    totals[k] += m[k]
            if not failed:
                card.record(spec, dict(totals, samples=n), digest, resumed=bool(done))
                w.finish()
        except BaseException:
            if not committed:
                w.discard(created, made_root)
            raise
        finally:
            w.unlock()
    return BuildReport(n, totals["kept"], totals["discarded"], totals["rejected"], len(todo) - len(failed),
                       len(done), time.perf_counter() - t0, sorted(failed))


def _unmarked(w: writer.SplitWriter, shards: set) -> list:
    """`(shard, why)` for the shards whose task succeeded but whose valid marker is not in the store."""
    have = w.done_shards() if shards else set()
    return [(s, f"its task finished but {w.url} holds no valid marker for it (did the worker write "
                f"to another store?)") for s in sorted(shards - have)]


def failure_text(e: BaseException) -> str:
    """One line for a failed task's exception, the same for every shard that failed the same way."""
    from distributed import KilledWorker
    if isinstance(e, KilledWorker):
        return ("KilledWorker: the worker processes running it died (out of memory, or killed); "
                "see the workers' logs")
    text = f"{type(e).__name__}: {e}".splitlines()[0] if str(e) else type(e).__name__
    return text[:300]


def report_text(r: BuildReport) -> str:
    rate = (r.samples / r.seconds) if r.seconds else 0.0
    s = (f"{r.samples} inputs: {r.kept} kept, {r.discarded} discarded, {r.rejected} rejected; "
         f"{r.shards_built} shards built, {r.shards_skipped} already done; {r.seconds:.1f} s ({rate:.0f} inputs/s)")
    if r.failed:
        s += "\nFAILED shards (fix the cause, then run again with --resume):\n" + "\n".join(
            f"  {_shard_list(shards)}: {msg}" for msg, shards in failures_by_message(r.failed).items())
    return s


def failures_by_message(failed: list) -> dict:
    """`{message: [shards]}` of a report's failures, each message once."""
    out: dict = {}
    for shard, msg in failed:
        out.setdefault(msg, []).append(shard)
    return out


def failure_line(r: BuildReport) -> str:
    """The one-line summary of a build's failures (for `odg: error:`)."""
    groups = failures_by_message(r.failed)
    msg, shards = max(groups.items(), key=lambda kv: len(kv[1]))
    more = f" (and {len(groups) - 1} other errors)" if len(groups) > 1 else ""
    total = r.shards_built + len(r.failed) + r.shards_skipped
    return (f"{len(r.failed)} of {total} shards failed: {msg}{more}; "
            "fix the cause, then run the same command with --resume")


def _shard_list(shards: list) -> str:
    """`shard 3` or `shards 0-4, 7, 9-12 (11)`."""
    shards = sorted(shards)
    if len(shards) == 1:
        return f"shard {shards[0]}"
    runs, start = [], shards[0]
    for a, b in zip(shards, shards[1:] + [None]):
        if b != a + 1:
            runs.append(f"{start}-{a}" if a != start else f"{a}")
            start = b
    shown = runs if len(runs) <= 20 else runs[:10] + ["..."] + runs[-2:]
    return f"shards {', '.join(shown)} ({len(shards)})"
