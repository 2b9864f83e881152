"""Real Dask processes for the tests: a `dask scheduler` and `dask worker`s on 127.0.0.1."""
import contextlib
import os
import socket
import subprocess
import sys
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, timeout, what):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def n_workers(addr):
    from distributed import Client
    try:
        with Client(addr, timeout="2s") as c:
            return len(c.scheduler_info(n_workers=-1)["workers"])
    except OSError:
        return 0


@contextlib.contextmanager
def dask_processes(workers: int = 1, worker_args=(), cwd=None):
    """A `dask scheduler` and `workers` single-threaded `dask worker` processes (with
    `worker_args`, e.g. `--memory-limit 2GB`; started in folder `cwd` when given); yields the
    scheduler's address once all are up."""
    port = free_port()
    addr = f"tcp://127.0.0.1:{port}"
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    dask = os.path.join(os.path.dirname(sys.executable), "dask")
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--dashboard-address", ":0"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)]
    try:
        for _ in range(workers):
            procs.append(subprocess.Popen([dask, "worker", addr, "--nthreads", "1", "--nworkers", "1",
                                           "--no-dashboard", *worker_args], env=env, cwd=cwd,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_for(lambda: n_workers(addr) == workers, 90, f"{workers} dask workers")
        yield addr
    finally:
        for p in procs[::-1]:
            p.terminate()
        for p in procs:
            p.wait(30)
