"""Where cells run: in this process (default), in local worker processes (one
per GPU, or N on CPU), or as Ray tasks with one GPU each. Workers send every
event back to the driver, which alone writes the store.

On a Ray cluster the store's file folder (checkpoints) must be on a file
system all nodes share, and the dataset path must be valid on every node.

A user error (NasmixError: a full disk, a bad dataset, a checkpoint of another
recipe) in any cell stops the study, as it does in-process: cells not started
yet are not run, the cell stays resumable, and the error is raised once the
cells already running have stopped (local processes let them finish; Ray
cancels them).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue as queue_mod
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

import torch

from nasmix.errors import ConfigError, NasmixError, UnknownNameError
from nasmix.events import Event
from nasmix.study.run import Resume, run_cell
from nasmix.study.schema import CellSpec

# (cell id, key, event) -> None
Write = Callable[[str, str, Event], None]
# (cell id, phase, done, total) -> None
Progress = Callable[[str, str, int, int], None]
# (cell, end state) -> None, when a cell ends
Finished = Callable[[CellSpec, str], None]


class Backend(ABC):
    """Runs cells and streams their events to the driver."""

    @abstractmethod
    def run(self, cells: list[CellSpec], resumes: dict[str, Resume], files: Path, data_path: str | None,
            write: Write, progress: Progress, finished: Finished) -> None:  # fmt: skip
        """Run every cell; return when all have ended or failed to run."""


class InProcess(Backend):
    """One cell after another in this process."""

    def run(self, cells, resumes, files, data_path, write, progress, finished) -> None:
        for cell in cells:
            state = run_cell(cell, files, lambda k, e, c=cell: write(c.id, k, e), resumes[cell.id],
                             data_path, lambda ph, n, t, c=cell: progress(c.id, ph, n, t))  # fmt: skip
            finished(cell, state)


# ---- local processes --------------------------------------------------------
_QUEUE = None


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


def _drain(q, write: Write, progress: Progress, block: float = 0.0) -> None:
    while True:
        try:
            item = q.get(timeout=block) if block else q.get_nowait()
        except (queue_mod.Empty, EOFError, OSError):
            return
        block = 0.0
        if item[0] == "event":
            write(*item[1:])
        else:
            progress(*item[1:])


class LocalProcesses(Backend):
    """A pool of worker processes: one per visible GPU (each sees only its GPU),
    or `workers` processes on CPU."""

    def __init__(self, workers: int | None = None):
        gpus = torch.cuda.device_count()
        self.gpus = list(range(gpus))
        self.workers = workers or max(gpus, 1)
        if self.workers < 1:
            raise ConfigError(f"workers must be >= 1, got {workers}")

    def run(self, cells, resumes, files, data_path, write, progress, finished) -> None:
        ctx = mp.get_context("spawn")
        manager = ctx.Manager()
        events, devices = manager.Queue(), manager.Queue()
        for g in self.gpus[: self.workers]:
            devices.put(g)
        error = None
        try:
            with ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker,
                                     initargs=(events, devices, max(1, (os.cpu_count() or 1) // self.workers))) as pool:  # fmt: skip
                futures = {pool.submit(_run_in_worker, c.to_json(), c.study, resumes[c.id], str(files), data_path): c
                           for c in cells}  # fmt: skip
                pending = set(futures)
                while pending:
                    done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                    _drain(events, write, progress)
                    for f in done:
                        _drain(events, write, progress)
                        if f.cancelled():
                            continue
                        if isinstance(f.exception(), NasmixError):  # stop the study; the cell stays resumable
                            error = error or f.exception()
                            for other in pending:
                                other.cancel()  # those not started yet; running ones finish
                            continue
                        finished(futures[f], _result(f, futures[f]))
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
    """Ray tasks, one GPU each where the cluster has GPUs (`address`: an existing
    cluster, e.g. 'ray://host:10001' or 'auto'; None starts a local instance)."""

    def __init__(self, address: str | None = None, gpus_per_cell: float | None = None):
        try:
            import ray  # noqa: F401
        except ImportError:
            raise NasmixError("the ray backend needs Ray: pip install 'nasmix[ray]'") from None
        self.address = address
        self.gpus_per_cell = gpus_per_cell

    def run(self, cells, resumes, files, data_path, write, progress, finished) -> None:
        import ray
        from ray.util.queue import Empty, Queue

        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": {k: v for k, v in os.environ.items() if k.startswith("NASMIX_")}})  # fmt: skip
        gpus = self.gpus_per_cell
        if gpus is None:
            gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        q = Queue()
        task = ray.remote(num_gpus=gpus, num_cpus=1, max_retries=0)(_ray_task)
        refs = {task.remote(c.to_json(), c.study, resumes[c.id], str(files), data_path, q): c for c in cells}
        pending = list(refs)

        def drain() -> None:
            while True:
                try:
                    items = q.get_nowait_batch(max(q.size(), 1))
                except Empty:
                    return
                for item in items:
                    (write if item[0] == "event" else progress)(*item[1:])

        error = None
        while pending:
            ready, pending = ray.wait(pending, timeout=0.2)
            drain()
            for ref in ready:
                drain()
                try:
                    state = ray.get(ref)
                except Exception as err:  # a crashed task: the cell stays resumable
                    cause = getattr(err, "cause", None) or err
                    if error is None and isinstance(cause, NasmixError):  # stop the study
                        error = NasmixError(str(cause))
                        for other in pending:
                            ray.cancel(other)
                    if error is not None:
                        continue
                    print(f"nasmix: cell {refs[ref].id} did not finish: {err!r}")
                    state = "interrupted"
                finished(refs[ref], state)
        if error is not None:
            raise error


def make_backend(name: str, workers: int | None = None, address: str | None = None) -> Backend:
    """The backend of that name: inprocess, local or ray."""
    if name == "inprocess":
        return InProcess()
    if name == "local":
        return LocalProcesses(workers)
    if name == "ray":
        return RayBackend(address)
    raise UnknownNameError("backend", name, ["inprocess", "local", "ray"])
