"""Expand a study into cells (one per combination and seed) and say which
combinations make no sense.

A cell's id is a hash of its full configuration, so the same cell in a
re-run study has the same id, and a changed setting makes a new cell.

Example:
    >>> from nasmix.config import study_from_dict
    >>> cfg = study_from_dict({"study": {"spaces": ["nb201"], "strategies": ["random"], "seeds": [0, 1]}})  # doctest: +SKIP
    >>> [c.seed for c in expand(cfg)[0]]  # doctest: +SKIP
    [0, 1]
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from nasmix import registry
from nasmix.config import StudyConfig

# One-shot strategies estimate with their own supernet: the estimator axis does
# not apply to them, and their cells carry this estimator name.
ONESHOT_ESTIMATOR = "supernet"


@dataclass(frozen=True)
class Cell:
    """One combination of a study.

    Attributes:
        space, strategy, estimator, dataset, seed: the combination.
        study: the study's name.
        settings: the phase settings and module options that apply to it
            (JSON-ready); part of the id.
    """

    space: str
    strategy: str
    estimator: str
    dataset: str
    seed: int
    study: str
    settings: Any

    @property
    def id(self) -> str:
        """A stable 12-character hash of the cell's whole configuration."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:12]

    @property
    def label(self) -> str:
        """Readable: 'space / strategy / estimator / dataset / seed N'."""
        est = "" if self.estimator == ONESHOT_ESTIMATOR else f" / {self.estimator}"
        return f"{self.space} / {self.strategy}{est} / {self.dataset} / seed {self.seed}"

    def to_json(self) -> str:
        """The canonical JSON of the cell (sorted keys)."""
        body = {k: getattr(self, k) for k in ("space", "strategy", "estimator", "dataset", "seed", "settings")}
        return json.dumps(body, sort_keys=True, default=str)

    @staticmethod
    def from_json(text: str, study: str = "") -> "Cell":
        """The inverse of to_json."""
        d = json.loads(text)
        return Cell(d["space"], d["strategy"], d["estimator"], d["dataset"], d["seed"], study, d["settings"])


def compatible(space: str, strategy: str, estimator: str) -> str | None:
    """None when the combination makes sense, else the reason it does not."""
    entry = registry.get("strategy", strategy)
    if entry.spaces is not None and space not in entry.spaces:
        return f"strategy {strategy} supports only the spaces {', '.join(entry.spaces)}"
    if entry.obj.kind == "oneshot":
        return None
    est = registry.get("estimator", estimator).obj
    spaces = getattr(est, "spaces", None)
    if spaces is not None and space not in spaces:
        return f"estimator {estimator} works only on {', '.join(spaces)}"
    return None


def _settings(cfg: StudyConfig, space: str, strategy: str, estimator: str, dataset: str) -> dict:
    train = dataclasses.asdict(cfg.eval.train)
    options = {"space": cfg.module_options("space", space), "strategy": cfg.module_options("strategy", strategy)}
    if estimator != ONESHOT_ESTIMATOR:
        options["estimator"] = cfg.module_options("estimator", estimator)
    return {
        # The data location is not part of a cell's identity: machines differ.
        "data": {k: v for k, v in dataclasses.asdict(cfg.data).items() if k != "path"},
        "search": dataclasses.asdict(cfg.search),
        "eval": {**{k: v for k, v in dataclasses.asdict(cfg.eval).items() if k != "train"}, "train": train},
        "options": options,
        "device": cfg.device,
    }


def expand(cfg: StudyConfig) -> tuple[list[Cell], list[str]]:
    """The study's cells, and a line for each combination dropped (with why).

    One-shot strategies get one cell per (space, dataset, seed), whatever the
    estimators listed; discrete strategies one per estimator.
    """
    cells: list[Cell] = []
    dropped: list[str] = []
    seen: set[str] = set()
    for dataset in cfg.datasets:
        for space in cfg.spaces:
            for strategy in cfg.strategies:
                oneshot = registry.get("strategy", strategy).obj.kind == "oneshot"
                for estimator in (ONESHOT_ESTIMATOR,) if oneshot else cfg.estimators:
                    why = compatible(space, strategy, estimator)
                    if why is not None:
                        dropped.append(f"{space} x {strategy} x {estimator}: {why}")
                        continue
                    settings = _settings(cfg, space, strategy, estimator, dataset)
                    for seed in cfg.seeds:
                        cell = Cell(space, strategy, estimator, dataset, seed, cfg.name, settings)
                        if cell.id not in seen:
                            seen.add(cell.id)
                            cells.append(cell)
    return cells, dropped
