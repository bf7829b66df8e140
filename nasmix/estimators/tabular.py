"""Tabular lookup: read accuracies and training times from the NAS-Bench-201 /
NATS-Bench topology benchmark instead of training.

The file formats (docs/estimators.md has the details):
- `NAS-Bench-201-v1_0-e61699.pth`, `NAS-Bench-201-v1_1-096897.pth`: one
  torch-saved dict {"meta_archs": [arch string, ...], "arch2infos": {index:
  {"less": results, "full": results}}, "evaluated_indexes": [...]}; "less" is
  the 12-epoch schedule, "full" the 200-epoch one.
- `NATS-tss-v1_0-3ffb9-simple/`: a folder of bz2-compressed pickles,
  `meta.pickle.pbz2` ({"meta_archs": [...], ...}) and one `NNNNNN.pickle.pbz2`
  per arch ({"12": results, "200": results}); `NATS-tss-v1_0-3ffb9.pickle.pbz2`
  is the same data in one file, laid out like the .pth file (hp keys "12"/"200").
- results (an ArchResults state): {"all_results": {(dataset, seed): run},
  "dataset_seed": {dataset: [seeds]}, ...}; run (a ResultsCount state):
  {"epochs": E, "eval_acc1es": {"x-valid@e": top-1 in %, "ori-test@e": ...},
  "eval_times": {"x-valid@e": seconds, ...}, "train_times": {e: seconds}, ...}.

Safety: these files are pickles. By default they are read without running
code from them: the .pth file with `torch.load(weights_only=True)` (plus
numpy arrays and scalars), the .pbz2 files with a restricted unpickler that
rebuilds only builtin containers, numbers, strings and numpy values
(nasmix.safeload). Both formats hold only such values. A file that names
anything else is refused with a DataError; `trusted = true` loads it with
full unpickling, which can run arbitrary code: only for a file you
downloaded from the benchmark's own source.

Example:
    >>> dataset_sets("cifar10", "valid"), dataset_sets("cifar100", "test")
    (('cifar10-valid', 'x-valid'), ('cifar100', 'x-test'))
"""

from __future__ import annotations

import bz2
import functools
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nasmix import registry, safeload
from nasmix.arch import Arch
from nasmix.errors import ConfigError, DataError
from nasmix.estimators.base import Estimate, Estimator
from nasmix.safeload import PLAIN_GLOBALS, UnsafeContent, numpy_torch_globals, torch_load

DATASETS = ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")
HP_KEYS = {12: ("12", "less"), 200: ("200", "full")}  # NATS-Bench keys, then NAS-Bench-201's


def dataset_sets(dataset: str, metric: str) -> tuple[str, str]:
    """The (training dataset key, evaluation set) holding a metric, as the benchmark's API maps them.

    "valid" is x-valid (CIFAR-10's comes from the cifar10-valid runs, since
    the cifar10 runs train on the validation images); "test" is ori-test on
    CIFAR-10 and x-test on CIFAR-100 and ImageNet16-120.
    """
    if metric == "valid":
        return ("cifar10-valid" if dataset == "cifar10" else dataset), "x-valid"
    return dataset, ("ori-test" if dataset in ("cifar10", "cifar10-valid") else "x-test")


_TRUST_HINT = (
    "if you trust the file (downloaded from the benchmark's own source), set trusted = true in the "
    "tabular estimator's options to load it with full unpickling, which can run code from it"
)


def _refused(path: Path, err: UnsafeContent) -> DataError:
    return DataError(
        f"refusing {path}: it names {', '.join(err.names)}, beyond the plain values a benchmark file holds, "
        f"and nothing in it was run; {_TRUST_HINT}"
    )


def _unpickle_bz2(path: Path, trusted: bool = False):
    try:
        with bz2.BZ2File(path, "rb") as f:
            if trusted:
                return pickle.load(f)  # the user vouched for this file (trusted = true)
            return safeload.load(f, PLAIN_GLOBALS)
    except UnsafeContent as err:
        raise _refused(path, err) from None
    except Exception as err:  # a corrupt bz2 stream or pickle raises many types
        raise DataError(f"cannot read {path} as a bz2-compressed pickle of NATS-Bench: {err}") from None


class Benchmark:
    """A loaded benchmark: arch strings and, per arch index, results per hp key.

    Args:
        path: the .pth file, the .pickle.pbz2 file, or the NATS "-simple" folder.
        trusted: load with full unpickling (can run code from the file) instead
            of the safe loaders.

    Raises:
        DataError: a missing path, a file of another format, or (unless
            trusted) a file that names code.
    """

    def __init__(self, path: str | Path, trusted: bool = False):
        self.path = Path(path).expanduser()
        self.trusted = trusted
        self._infos: dict[int, dict] = {}
        self._folder: Path | None = None
        if not self.path.exists():
            raise DataError(
                f"tabular benchmark {str(self.path)!r} does not exist; give the NAS-Bench-201 "
                "file (NAS-Bench-201-v1_1-096897.pth) or the NATS-tss-v1_0-3ffb9-simple folder"
            )
        if self.path.is_dir():
            meta_file = self.path / "meta.pickle.pbz2"
            if not meta_file.exists():
                raise DataError(
                    f"{self.path} is a folder without meta.pickle.pbz2: not a NATS-Bench '-simple' folder"
                )
            meta, self._folder = _unpickle_bz2(meta_file, trusted), self.path
        elif self.path.name.endswith(".pbz2"):
            meta = _unpickle_bz2(self.path, trusted)
        else:
            meta = self._torch_load()
        what = "NATS-Bench meta file" if self._folder else "NAS-Bench-201 / NATS-Bench file"
        needed = ("meta_archs",) if self._folder else ("meta_archs", "arch2infos")
        missing = [k for k in needed if not isinstance(meta, dict) or k not in meta]
        if missing:
            found = sorted(map(str, meta))[:8] if isinstance(meta, dict) else type(meta).__name__
            raise DataError(f"{self.path} is not a {what}: missing {', '.join(missing)} (found {found})")
        self.meta_archs: list[str] = list(meta["meta_archs"])
        self.index = {s: i for i, s in enumerate(self.meta_archs)}
        if not self._folder:
            self._infos = dict(meta["arch2infos"])

    def _torch_load(self):
        import torch

        try:
            if self.trusted:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FutureWarning)
                    # full unpickling can run code from the file: only with trusted = true
                    return torch.load(self.path, map_location="cpu", weights_only=False)
            return torch_load(self.path, numpy_torch_globals())
        except UnsafeContent as err:
            raise _refused(self.path, err) from None
        except Exception as err:  # torch raises many types for a foreign file
            raise DataError(f"cannot read {self.path} as a torch-saved NAS-Bench-201 file: {err}") from None

    def infos(self, index: int) -> dict:
        """hp key -> results of one arch index (read from its file in a NATS folder)."""
        if index not in self._infos:
            if self._folder is None:
                raise DataError(f"{self.path} has no results for arch index {index}")
            file = self._folder / f"{index:06d}.pickle.pbz2"
            if not file.exists():
                raise DataError(f"{self._folder} has no {file.name} (arch index {index})")
            self._infos[index] = _unpickle_bz2(file, self.trusted)
        return self._infos[index]

    def query(self, arch_str: str, dataset: str, epochs: int, metric: str) -> dict:
        """The benchmark's record of one arch, averaged over its seeds.

        Returns:
            {"score": the metric's top-1 in [0, 1], "test": the test top-1 (or
            None), "cost_s": recorded training seconds + one evaluation of the
            metric's set, "index", "seeds"}.
        """
        if arch_str not in self.index:
            raise DataError(f"{self.path} has no arch {arch_str!r} (it lists {len(self.index)} archs)")
        index = self.index[arch_str]
        infos = self.infos(index)
        results = next((infos[k] for k in HP_KEYS[epochs] if k in infos), None)
        if results is None:
            raise DataError(f"{self.path}: arch {index} has no {epochs}-epoch results (keys {sorted(infos)})")
        key, eval_set = dataset_sets(dataset, metric)
        runs = _runs(results, key, self.path, index)
        last = f"{eval_set}@{epochs - 1}"
        accs = [r["eval_acc1es"][last] for r in runs if last in r.get("eval_acc1es", {})]
        if not accs:
            raise DataError(f"{self.path}: arch {index} has no {last} accuracy on {key}")
        costs = [_cost(r, eval_set, epochs) for r in runs]
        test_key, test_set = dataset_sets(dataset, "test")
        test_last = f"{test_set}@{epochs - 1}"
        test_runs = runs if test_key == key else _runs(results, test_key, self.path, index, required=False)
        tests = [r["eval_acc1es"][test_last] for r in test_runs if test_last in r.get("eval_acc1es", {})]
        recorded = all(c is not None for c in costs)
        return {
            "score": float(np.mean(accs)) / 100.0,
            "test": float(np.mean(tests)) / 100.0 if tests else None,
            "cost_s": float(np.mean([c for c in costs if c is not None])) if recorded else 0.0,
            "cost_recorded": recorded,
            "index": index,
            "seeds": len(accs),
        }


def _runs(results: dict, dataset: str, path: Path, index: int, required: bool = True) -> list[dict]:
    all_results = results.get("all_results", {})
    seeds = results.get("dataset_seed", {}).get(dataset)
    if seeds is None:
        seeds = sorted(s for d, s in all_results if d == dataset)
    runs = [all_results[(dataset, s)] for s in seeds if (dataset, s) in all_results]
    if not runs and required:
        have = sorted({d for d, _ in all_results})
        raise DataError(
            f"{path}: arch {index} has no runs on {dataset!r} (it has {', '.join(have) or 'none'})"
        )
    return runs


def _cost(run: dict, eval_set: str, epochs: int) -> float | None:
    """Training seconds of all epochs plus one evaluation (the benchmark API's simulate_train_eval)."""
    train_times = run.get("train_times")
    if not train_times:
        return None
    train_s = sum(float(train_times[e]) for e in range(epochs) if e in train_times)
    eval_times = run.get("eval_times") or {}
    evals = [float(eval_times[f"{eval_set}@{e}"]) for e in range(epochs) if f"{eval_set}@{e}" in eval_times]
    return train_s + (sum(evals) / len(evals) if evals else 0.0)


@functools.lru_cache(maxsize=2)
def _load(resolved: str, stamp: tuple[int, int], trusted: bool) -> Benchmark:
    return Benchmark(resolved, trusted)


def load_benchmark(path: str | Path, trusted: bool = False) -> Benchmark:
    """The benchmark at `path`, loaded once per process (until the file changes).

    Args:
        path: the benchmark file or folder.
        trusted: full unpickling (see Benchmark).

    Raises:
        DataError: a missing path or a file of another format.
    """
    p = Path(path).expanduser()
    if not p.exists():
        return Benchmark(p)  # raises the DataError that names the path
    st = p.stat()
    return _load(str(p.resolve()), (st.st_mtime_ns, st.st_size), trusted)


@registry.register("estimator", "tabular")
class Tabular(Estimator):
    """Tabular lookup: NAS-Bench-201 / NATS-Bench accuracies and recorded training times (nb201 space only).

    A candidate's score is the benchmark's top-1 (mean over its seeds) on
    `metric`'s set after `epochs` epochs on `dataset`, and its cost the
    benchmark's recorded training seconds plus one evaluation, as the
    benchmark's `simulate_train_eval` charges them; the Estimate is marked
    simulated, and extra["true_score"] carries the test top-1. Nothing is
    trained; `path` is required and loaded once per process, lazily.
    Source: Dong and Yang (2020), NAS-Bench-201; Dong et al. (2021),
    NATS-Bench (topology search space, tss). Departures: accuracies are
    averaged over the recorded seeds, where the benchmark's API picks one at
    random by default; a run whose times were not recorded costs 0
    (extra["cost_recorded"] False).

    Example:
        >>> Tabular(Tabular.Config(path="NAS-Bench-201-v1_1-096897.pth")).config.epochs
        200
    """

    kind = "tabular"
    spaces = ("nb201",)  # studies skip this estimator on other spaces (nasmix.study.grid.compatible)

    @dataclass(frozen=True)
    class Config:
        """Options of the lookup.

        Attributes:
            path: the benchmark: NAS-Bench-201-v1_*.pth, NATS-tss-v1_0-3ffb9.pickle.pbz2,
                or the NATS-tss-v1_0-3ffb9-simple folder (required).
            dataset: "cifar10-valid", "cifar10", "cifar100" or "ImageNet16-120".
            epochs: 12 or 200 (the benchmark's two schedules, hp).
            metric: "valid" (what a search should see) or "test".
            trusted: load the file with full unpickling, which can run code
                from it; needed only for a file the safe loaders refuse.
        """

        path: str | None = None
        dataset: str = "cifar10-valid"
        epochs: int = 200
        metric: str = "valid"
        trusted: bool = False

        def __post_init__(self) -> None:
            if self.path is None:
                raise ConfigError("tabular needs path = the NAS-Bench-201 .pth file or the NATS-Bench folder")
            if self.dataset not in DATASETS:
                raise ConfigError(f"unknown benchmark dataset {self.dataset!r}; valid: {', '.join(DATASETS)}")
            if self.epochs not in HP_KEYS:
                raise ConfigError(f"epochs must be 12 or 200 (the benchmark's schedules), got {self.epochs}")
            if self.metric not in ("valid", "test"):
                raise ConfigError(f"metric must be 'valid' or 'test', got {self.metric!r}")

    def __init__(self, config: Config):
        self.config = config

    @property
    def benchmark(self) -> Benchmark:
        """The loaded benchmark (loaded on first use)."""
        path = self.config.path
        assert path is not None  # Config.__post_init__ refuses None
        return load_benchmark(path, self.config.trusted)

    def prepare(self, space, data, budget, rng: np.random.Generator) -> None:
        """Check the space and load the benchmark before the search starts."""
        if space.registry_name != "nb201":
            raise ConfigError(f"tabular looks up nb201 archs only, not {space.registry_name!r}")
        self.benchmark  # noqa: B018 - load now, so a bad path fails before the first candidate

    def estimate(self, space, arch: Arch, data, parent: Arch | None = None) -> Estimate:
        """Look the arch up.

        Args:
            space: the nb201 space.
            arch: the candidate.
            data: ignored (the benchmark's own data was used).
            parent: ignored.

        Returns:
            A simulated Estimate: the benchmark's accuracy and recorded seconds.
        """
        if arch.space != "nb201":
            raise ConfigError(f"tabular looks up nb201 archs only, not {arch.space!r}")
        c = self.config
        rec = self.benchmark.query(space.format(arch.genotype), c.dataset, c.epochs, c.metric)
        fidelity = {"epochs": c.epochs, "dataset": c.dataset, "metric": c.metric, "seeds": rec["seeds"]}
        extra = {
            "index": rec["index"],
            "cost_recorded": rec["cost_recorded"],
            **({"true_score": rec["test"]} if rec["test"] is not None else {}),
        }
        return Estimate(rec["score"], rec["cost_s"], fidelity, simulated=True, extra=extra)
