"""The build lock of a store split: at most one build writes a split at a time.

The lock is `<split>/_odg/lock.json` (`schema.LOCK_KEY`), holding who took it (host, pid, start
time) for the refusal message; what makes it held differs by store:

- local filesystem: an OS lock (`fcntl.flock`, exclusive) on that file, held by the open file for
  the build's whole life. The kernel drops it when the process exits however it exits (SIGKILL
  included, before the dead process is reaped), so a lock left behind by a dead build is simply
  free: no liveness check, no race between two builds taking over the same stale lock (the kernel
  gives it to one). The file is removed on release; a process that locked a file which was removed
  meanwhile tries again on the new one.
- object store: the key itself, created exclusively (`StoreKeys.create`: a conditional PUT). A
  lock whose process ran on this host and is gone (no such pid, or a zombie) is stale and is taken
  over: under a host-local OS lock (one per store key, in the temporary folder), the stale key is
  re-read, deleted only if unchanged, and created again exclusively, so that of two builds taking
  over the same stale lock exactly one gets it. A lock from another host cannot be checked: it is
  held until its build releases it or someone deletes the key. Only S3 has the conditional PUT;
  on another object store (gs://) the create is a check then a PUT, so two builds started in the
  same instant on two hosts could both pass it: start one build per split there.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import socket
import tempfile
import time

from .keys import StoreKeys
from .schema import LOCK_KEY

RETRY_S = 1.0       # how long a local lock held by a process that has exited is retried: the kernel
                    # releases it as the process exits, a moment after the kill


def _owner() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}


def _holder_text(raw: bytes | None) -> str:
    try:
        h = json.loads(raw)
        return f"process {h['pid']} on {h['host']} (since {h['started']})"
    except (TypeError, ValueError, KeyError):
        return "another process"


def _process_gone(pid: int) -> bool:
    """Whether process `pid` of this host has exited (no such process, or a zombie not yet reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] in ("Z", "X")
    except OSError:
        return False


def _stale(raw: bytes | None) -> bool:
    """Whether lock contents `raw` name a process of this host that has exited."""
    try:
        h = json.loads(raw)
        return h["host"] == socket.gethostname() and _process_gone(int(h["pid"]))
    except (TypeError, ValueError, KeyError):
        return False


class BusyError(Exception):
    """The lock is held by another build; the message names it."""


class SplitLock:
    """The lock of split `split` of the store behind `keys` (a `StoreKeys`)."""

    def __init__(self, keys: StoreKeys, split: str):
        self.keys, self.split = keys, split
        self.key = f"{split}/{LOCK_KEY}"
        self.path = keys.local_path(self.key)
        self._fd = None
        self._held = False

    @property
    def held(self) -> bool:
        return self._held

    def acquire(self) -> None:
        """Take the lock or raise `BusyError` naming its holder."""
        if self.path is not None:
            self._acquire_local()
        else:
            self._acquire_object()
        self._held = True

    def release(self) -> None:
        if not self._held:
            return
        if self._fd is not None:
            try:
                os.unlink(self.path)            # before unlocking: a waiter then sees another inode and retries
            except FileNotFoundError:
                pass
            os.close(self._fd)
            self._fd = None
        else:
            self.keys.delete(self.key)
        self._held = False

    # -- local filesystem: flock -----------------------------------------------------------------

    def _acquire_local(self) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        deadline = time.monotonic() + RETRY_S
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                holder = os.pread(fd, 4096, 0)
                os.close(fd)
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
                if time.monotonic() > deadline or not _stale(holder):
                    raise BusyError(_holder_text(holder)) from None
                time.sleep(0.02)
                continue
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)                        # locked a file its holder removed on release: again
        data = json.dumps(_owner()).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        self._fd = fd

    # -- object stores: exclusive create, takeover of a stale lock of this host ---------------------

    def _acquire_object(self) -> None:
        data = json.dumps(_owner()).encode()
        if self.keys.create(self.key, data):
            return
        raw = self.keys.get(self.key)
        if raw is None and self.keys.create(self.key, data):   # released meanwhile
            return
        if not _stale(raw):
            raise BusyError(_holder_text(raw))
        name = hashlib.sha256(f"{self.keys.store}/{self.key}".encode()).hexdigest()[:24]
        with open(os.path.join(tempfile.gettempdir(), f"odg-lock-{name}"), "a+b") as guard:
            fcntl.flock(guard.fileno(), fcntl.LOCK_EX)  # one takeover at a time on this host
            again = self.keys.get(self.key)
            if again == raw:
                self.keys.delete(self.key)
            if not self.keys.create(self.key, data):
                raise BusyError(_holder_text(self.keys.get(self.key)))
