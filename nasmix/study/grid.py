"""Expand a study into cells (one per combination and seed) and say which
combinations make no sense.

A cell's id is a hash of its full configuration, so the same cell in a
re-run study has the same id, and a changed setting makes a new cell.

Example:
    >>> from nasmix.config import study_from_dict
    >>> study = {"study": {"spaces": ["nb201"], "strategies": ["random"], "seeds": [0, 1]}}
    >>> cfg = study_from_dict(study)  # doctest: +SKIP
    >>> [c.seed for c in expand(cfg)[0]]  # doctest: +SKIP
    [0, 1]
"""

from __future__ import annotations

import dataclasses
from typing import Any

from nasmix import registry
from nasmix.config import StudyConfig
from nasmix.study.schema import ONESHOT_ESTIMATOR, CellSpec, ModuleOptions

__all__ = ["ONESHOT_ESTIMATOR", "cell_spec", "compatible", "expand"]


def compatible(space: str, strategy: Any, estimator: Any) -> str | None:
    """None when the combination makes sense, else the reason it does not.

    Args:
        space: the space's name.
        strategy, estimator: registered names, or the modules themselves
            (ONESHOT_ESTIMATOR for a one-shot strategy's cell).
    """
    strat = registry.get("strategy", strategy).obj if isinstance(strategy, str) else strategy
    name = strategy if isinstance(strategy, str) else strat.registry_name
    if strat.spaces is not None and space not in strat.spaces:
        return f"strategy {name} supports only the spaces {', '.join(strat.spaces)}"
    if strat.kind == "oneshot":
        return None
    est = registry.get("estimator", estimator).obj if isinstance(estimator, str) else estimator
    spaces = getattr(est, "spaces", None)
    if spaces is not None and space not in spaces:
        return f"estimator {getattr(est, 'registry_name', estimator)} works only on {', '.join(spaces)}"
    return None


def cell_spec(
    cfg: StudyConfig, space: str, strategy: str, estimator: str, dataset: str, seed: int
) -> CellSpec:
    """The cell of one combination and seed of a study."""
    estimator_options = None if estimator == ONESHOT_ESTIMATOR else cfg.module_options("estimator", estimator)
    options = ModuleOptions(
        cfg.module_options("space", space), cfg.module_options("strategy", strategy), estimator_options
    )
    return CellSpec(
        space,
        strategy,
        estimator,
        dataset,
        seed,
        cfg.name,
        cfg.search,
        cfg.eval,
        dataclasses.replace(cfg.data, path=None),
        options,
        cfg.device,
    )


def expand(cfg: StudyConfig) -> tuple[list[CellSpec], list[str]]:
    """The study's cells, and a line for each combination dropped (with why).

    One-shot strategies get one cell per (space, dataset, seed), whatever the
    estimators listed; discrete strategies one per estimator.
    """
    cells: list[CellSpec] = []
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
                    for seed in cfg.seeds:
                        cell = cell_spec(cfg, space, strategy, estimator, dataset, seed)
                        if cell.id not in seen:
                            seen.add(cell.id)
                            cells.append(cell)
    return cells, dropped
