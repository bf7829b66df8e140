"""Where cells run: in this process (default), in local worker processes (one
per GPU, or N on CPU), or as Ray tasks with one GPU each. Workers send every
event back to the driver, which alone writes the store.

A backend takes its cells from a queue (nasmix.study.lease.CellQueue) that
claims each cell in the store just before it runs, so several drivers (`nasmix
study` processes) can share one store; it runs as many at once as it has
slots (local: its worker processes; Ray: the cluster's GPUs, or CPUs), and
when every open cell is held by another driver it waits and looks again, to
take over a cell whose driver died.

Ray starts a local instance bound to 127.0.0.1 unless an address is given:
a cluster is joined only when its address is named (`--ray-address`,
`[study] ray_address`).

On a Ray cluster the store's file folder (checkpoints) must be on a file
system all nodes share, and the dataset path must be valid on every node.

A user error (NasmixError: a full disk, a bad dataset, a checkpoint of another
recipe) in any cell stops the study, as it does in-process: cells not started
yet are not run, the cell stays resumable, and the error is raised once the
cells already running have stopped (local processes let them finish; Ray
cancels them).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue as queue_mod
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, Protocol

import torch

from nasmix.errors import ConfigError, NasmixError, UnknownNameError
from nasmix.events import Event
from nasmix.study.run import Resume, run_cell
from nasmix.study.schema import CellSpec
from nasmix.study.store import LeaseLost

# (cell id, key, event) -> None
Write = Callable[[str, str, Event], None]
# (cell id, phase, done, total) -> None
Progress = Callable[[str, str, int, int], None]
# (cell, end state) -> None, when a cell stops: its end state, "interrupted" (its worker
# died) or "lost" (another driver took its lease)
Finished = Callable[[CellSpec, str], None]


class Jobs(Protocol):
    """The cells to run, claimed one at a time (nasmix.study.lease.CellQueue)."""

    poll: float  # seconds to wait before asking again when nothing could be claimed

    def next(self) -> tuple[CellSpec, Resume] | None:
        """A claimed cell and what to resume it from, or None when none can be claimed now."""

    def exhausted(self) -> bool:
        """Whether nothing is left to claim, now or later."""


class Backend(ABC):
    """Runs cells and streams their events to the driver."""

    @abstractmethod
    def run(
        self,
        jobs: Jobs,
        files: Path,
        data_path: str | None,
        write: Write,
        progress: Progress,
        finished: Finished,
    ) -> None:
        """Run the cells `jobs` gives; return when it is exhausted (or on a user error)."""


class InProcess(Backend):
    """One cell after another in this process."""

    def run(self, jobs, files, data_path, write, progress, finished) -> None:
        while True:
            job = jobs.next()
            if job is None:
                if jobs.exhausted():
                    return
                time.sleep(jobs.poll)  # other drivers hold the rest: take over any whose driver dies
                continue
            cell, resume = job
            emit = lambda k, e, c=cell: write(c.id, k, e)  # noqa: E731
            report = lambda ph, n, t, c=cell: progress(c.id, ph, n, t)  # noqa: E731
            try:
                state = run_cell(cell, files, emit, resume, data_path, report)
            except LeaseLost:  # another driver runs it now
                state = "lost"
            finished(cell, state)


# ---- local processes --------------------------------------------------------
_QUEUE: Any = None  # a worker's end of the event queue, set by _init_worker


def _init_worker(events, devices, threads: int) -> None:
    global _QUEUE
    _QUEUE = events
    torch.set_num_threads(threads)  # workers share the cores instead of each taking all
    try:
        gpu = devices.get_nowait()
    except queue_mod.Empty:
        gpu = None
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)


def _run_remote(cell_json: str, study: str, resume: Resume, files: str, data_path: str | None, put) -> str:
    """run_cell in a worker, its events and progress sent through `put`."""
    cell = CellSpec.from_json(cell_json, study)
    emit = lambda k, e: put(("event", cell.id, k, e))  # noqa: E731
    prog = lambda ph, n, t: put(("progress", cell.id, ph, n, t))  # noqa: E731
    try:
        return run_cell(cell, Path(files), emit, resume, data_path, prog)
    except NasmixError as err:
        # Sent back as a plain NasmixError: subclasses with their own __init__ do not unpickle.
        raise NasmixError(str(err)) from None


def _run_in_worker(cell_json: str, study: str, resume: Resume, files: str, data_path: str | None) -> str:
    return _run_remote(cell_json, study, resume, files, data_path, _QUEUE.put)


def _deliver(item: tuple, write: Write, progress: Progress) -> None:
    """One event or progress report from a worker."""
    if item[0] != "event":
        progress(*item[1:])
        return
    # LeaseLost: another driver took the cell, and the rest of its events are dropped (the driver said so).
    with contextlib.suppress(LeaseLost):
        write(*item[1:])


def _drain(q, write: Write, progress: Progress, block: float = 0.0) -> None:
    while True:
        try:
            item = q.get(timeout=block) if block else q.get_nowait()
        except (queue_mod.Empty, EOFError, OSError):
            return
        block = 0.0
        _deliver(item, write, progress)


class LocalProcesses(Backend):
    """A pool of worker processes: one per visible GPU (each sees only its GPU),
    or `workers` processes on CPU."""

    def __init__(self, workers: int | None = None):
        gpus = torch.cuda.device_count()
        self.gpus = list(range(gpus))
        self.workers = workers or max(gpus, 1)
        if self.workers < 1:
            raise ConfigError(f"workers must be >= 1, got {workers}")

    def run(self, jobs, files, data_path, write, progress, finished) -> None:
        ctx = mp.get_context("spawn")
        manager = ctx.Manager()
        events, devices = manager.Queue(), manager.Queue()
        for g in self.gpus[: self.workers]:
            devices.put(g)
        error = None
        try:
            with ProcessPoolExecutor(
                self.workers,
                mp_context=ctx,
                initializer=_init_worker,
                initargs=(events, devices, max(1, (os.cpu_count() or 1) // self.workers)),
            ) as pool:
                running: dict = {}
                while True:
                    while error is None and len(running) < self.workers and (job := jobs.next()) is not None:
                        cell, resume = job
                        args = (cell.to_json(), cell.study, resume, str(files), data_path)
                        running[pool.submit(_run_in_worker, *args)] = cell
                    if not running:
                        if error is not None or jobs.exhausted():
                            break
                        time.sleep(jobs.poll)  # other drivers hold the rest
                        continue
                    done, _ = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
                    _drain(events, write, progress)
                    for f in done:
                        _drain(events, write, progress)
                        cell = running.pop(f)
                        if isinstance(f.exception(), NasmixError):  # stop the study; the cell stays resumable
                            error = error or f.exception()
                            finished(cell, "interrupted")
                            continue
                        finished(cell, _result(f, cell))
        finally:
            manager.shutdown()
        if error is not None:
            raise error


def _result(future, cell: CellSpec) -> str:
    try:
        return future.result()
    except Exception as err:  # the worker died (killed, crashed): the cell stays resumable
        print(f"nasmix: cell {cell.id} ({cell.label}) did not finish: {err!r}")
        return "interrupted"


# ---- Ray ----------------------------------------------------------------------
def _ray_task(cell_json, study, resume, files, data_path, q):
    return _run_remote(cell_json, study, resume, files, data_path, q.put)


class RayBackend(Backend):
    """Ray tasks, one GPU each where the cluster has GPUs.

    Args:
        address: an existing cluster's address ('ray://host:10001', 'host:6379' or 'auto');
            None starts a local instance bound to 127.0.0.1 (never one found on this
            machine or in $RAY_ADDRESS: a cluster is joined only when named).
        gpus_per_cell: GPUs per task (default: 1 when the cluster has GPUs, else 0).
    """

    def __init__(self, address: str | None = None, gpus_per_cell: float | None = None):
        try:
            import ray  # noqa: F401
        except ImportError:
            raise NasmixError("the ray backend needs Ray: pip install 'nasmix[ray]'") from None
        self.address = None if address == "local" else address
        self.gpus_per_cell = gpus_per_cell

    def start(self) -> None:
        """Join the named cluster, or start a local instance that listens on 127.0.0.1 only."""
        import ray

        if ray.is_initialized():  # the caller set Ray up (an explicit choice)
            return
        env = {"env_vars": {k: v for k, v in os.environ.items() if k.startswith("NASMIX_")}}
        options: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, runtime_env=env)
        if self.address is not None:
            ray.init(address=self.address, **options)
            return
        with _loopback_only():
            ray.init(address="local", **options)

    def run(self, jobs, files, data_path, write, progress, finished) -> None:
        import ray
        from ray.util.queue import Empty, Queue

        self.start()
        gpus = self.gpus_per_cell
        if gpus is None:
            gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        q = Queue()
        task = ray.remote(num_gpus=gpus, num_cpus=1, max_retries=0)(_ray_task)

        def slots() -> int:
            resources = ray.cluster_resources()
            return max(1, int(resources.get("GPU", 0) / gpus) if gpus else int(resources.get("CPU", 1)))

        def drain() -> None:
            while True:
                try:
                    items = q.get_nowait_batch(max(q.size(), 1))
                except Empty:
                    return
                for item in items:
                    _deliver(item, write, progress)

        error = None
        running: dict = {}
        while True:
            free = slots() - len(running) if error is None else 0
            while free > 0 and (job := jobs.next()) is not None:
                cell, resume = job
                running[task.remote(cell.to_json(), cell.study, resume, str(files), data_path, q)] = cell
                free -= 1
            if not running:
                if error is not None or jobs.exhausted():
                    break
                time.sleep(jobs.poll)  # other drivers hold the rest
                continue
            ready, _ = ray.wait(list(running), timeout=0.2)
            drain()
            for ref in ready:
                drain()
                cell = running.pop(ref)
                try:
                    state = ray.get(ref)
                except Exception as err:  # a crashed task: the cell stays resumable
                    cause = getattr(err, "cause", None) or err
                    if error is None and isinstance(cause, NasmixError):  # stop the study
                        error = NasmixError(str(cause))
                        for other in running:
                            ray.cancel(other)
                    if error is None:
                        print(f"nasmix: cell {cell.id} did not finish: {err!r}")
                    state = "interrupted"
                finished(cell, state)
        if error is not None:
            raise error


@contextlib.contextmanager
def _loopback_only() -> Iterator[None]:
    """While Ray starts a local instance: every service it starts listens on 127.0.0.1, not
    on all interfaces. Ray does so when cluster support is off (its setting for macOS and
    Windows): the processes it starts read the environment variable, this one Ray's constant."""
    from ray._private import ray_constants

    var = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
    old_env, old_flag = os.environ.get(var), getattr(ray_constants, "ENABLE_RAY_CLUSTER", True)
    os.environ[var] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        if old_env is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = old_env
        ray_constants.ENABLE_RAY_CLUSTER = old_flag


def make_backend(name: str, workers: int | None = None, address: str | None = None) -> Backend:
    """The backend of that name: inprocess, local or ray."""
    if name == "inprocess":
        return InProcess()
    if name == "local":
        return LocalProcesses(workers)
    if name == "ray":
        return RayBackend(address)
    raise UnknownNameError("backend", name, ["inprocess", "local", "ray"])
