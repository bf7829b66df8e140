"""The NAS best-practices checklist (after Lindauer and Hutter 2020, "Best
Practices for Scientific Research on Neural Architecture Search", JMLR 21),
with the items a study's store can answer filled in.

The items are paraphrased; an item the data cannot answer has status None
and is left for the author to tick.

Example:
    >>> items = checklist([], [])
    >>> sum(1 for i in items if i.status is None) > 0
    True
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from nasmix.report.data import CellRecord
from nasmix.report.metrics import CellMetrics

RANDOM_BASELINES = ("random", "rsws")


@dataclass(frozen=True)
class ChecklistItem:
    """One checklist item.

    Attributes:
        section: "code", "comparison" or "reporting".
        text: the practice, in a sentence.
        status: "yes", "no", "partly", or None (for the author to answer).
        evidence: what in the study answered it, or what the author should check.
    """

    section: str
    text: str
    status: str | None
    evidence: str


def _same(values: Sequence, what: str) -> tuple[str, str]:
    distinct = {json.dumps(v, sort_keys=True, default=str) for v in values}
    if not values:
        return "no", "no cells"
    if len(distinct) == 1:
        return "yes", f"every cell uses the same {what}"
    return "no", f"{len(distinct)} different {what}s among the cells (see the settings in the appendix)"


def _per_dataset(records: Sequence[CellRecord], part: str, what: str) -> tuple[str, str]:
    """The same settings part within each dataset (datasets may differ, methods may not)."""
    results = [
        _same([r.settings.get(part) for r in records if r.dataset == d], what)
        for d in dict.fromkeys(r.dataset for r in records)
    ]
    if not results:
        return "no", "no cells"
    bad = [e for s, e in results if s != "yes"]
    return ("no", "; ".join(bad)) if bad else ("yes", f"within each dataset, every cell uses the same {what}")


def _spaces_shared(records: Sequence[CellRecord]) -> tuple[str, str]:
    methods: dict[str, set[str]] = {}
    for r in records:
        methods.setdefault(r.method, set()).add(f"{r.space} on {r.dataset}")
    if len(methods) < 2:
        return "partly", "only one method in the study: nothing is compared"
    sets = list(methods.values())
    if all(s == sets[0] for s in sets):
        return "yes", f"all {len(methods)} methods ran on the same spaces and datasets"
    return "no", "; ".join(f"{m}: {', '.join(sorted(s))}" for m, s in methods.items())


def _seeds(records: Sequence[CellRecord]) -> tuple[str, str]:
    per: dict[tuple, set[int]] = {}
    for r in records:
        per.setdefault(r.combo, set()).add(r.seed)
    if not per:
        return "no", "no cells"
    counts = [len(s) for s in per.values()]
    lo, hi = min(counts), max(counts)
    text = f"{lo} seed{'s' if lo != 1 else ''} per combination" + (f" (up to {hi})" if hi != lo else "")
    return ("yes" if lo >= 2 else "no"), text + "; the marginal tables give mean, std and n over them"


def _search_cost(metrics: Sequence[CellMetrics]) -> tuple[str, str]:
    ended = [m for m in metrics if m.state in ("finished", "projected")]
    if not ended:
        return "no", "no cell ended with a result"
    missing = [m.label for m in ended if m.search_h is None]
    if missing:
        return "partly", f"no search time for {', '.join(missing)}"
    basis = ended[0].cost_basis
    return (
        "yes",
        f"search and evaluation time of every cell, end to end ({basis} seconds in the cost columns)",
    )


def _ablation(records: Sequence[CellRecord]) -> tuple[str | None, str]:
    varied = [
        a for a in ("space", "strategy", "estimator", "dataset") if len({getattr(r, a) for r in records}) > 1
    ]
    if len(varied) >= 2:
        return "partly", (
            f"the study varies {', '.join(varied)} factorially: the marginal tables are module-level "
            "ablations; ablations inside a method are for the author"
        )
    return None, "the study varies at most one module: add ablations of the method's parts"


def checklist(records: Sequence[CellRecord], metrics: Sequence[CellMetrics]) -> list[ChecklistItem]:
    """The checklist, answered where the study's data can answer it.

    Args:
        records: the study's cells (settings, seeds, modules).
        metrics: their CellMetrics (costs, states, devices).

    Returns:
        The items in checklist order.
    """
    strategies = sorted({r.strategy for r in records})
    has_random = [s for s in strategies if s in RANDOM_BASELINES]
    tabular = sorted({r.estimator for r in records if r.estimator_kind == "tabular"})
    failed = [m for m in metrics if m.state == "failed"]
    projected = [m for m in metrics if m.state == "projected"]
    devs = sorted({d for m in metrics for d in m.devices})
    items = [
        (
            "code",
            "The code of the training and evaluation pipeline is public.",
            None,
            "publish the nasmix version and the study file",
        ),
        (
            "code",
            "The code of the search space is public.",
            None,
            "name the nasmix spaces used, or publish your own",
        ),
        (
            "code",
            "The code of every compared NAS method is public.",
            None,
            "publish any method not in nasmix",
        ),
        (
            "code",
            "Every hyperparameter of search and final training is recorded and published.",
            "yes",
            "the store holds each cell's full configuration; the appendix prints the distinct settings",
        ),
        (
            "code",
            "Random seeds are fixed and given.",
            "yes" if records else "no",
            f"seeds {', '.join(str(s) for s in sorted({r.seed for r in records}))}"
            if records
            else "no cells",
        ),
        ("comparison", "Compared methods search the same space on the same data.", *_spaces_shared(records)),
        (
            "comparison",
            "Every chosen architecture is trained and tested by the same evaluation pipeline.",
            *_per_dataset(records, "eval", "evaluation settings"),
        ),
        (
            "comparison",
            "Every method uses the same data splits and subsets.",
            *_per_dataset(records, "data", "data settings"),
        ),
        (
            "comparison",
            "Methods are compared over time (anytime performance), not only at their end.",
            "yes" if records else "no",
            "accuracy-over-runtime curves, time to target and anytime AUC per cell",
        ),
        (
            "comparison",
            "A random-search baseline is among the compared methods.",
            "yes" if has_random else "no",
            f"included: {', '.join(has_random)}"
            if has_random
            else f"strategies: {', '.join(strategies) or 'none'}",
        ),
        ("comparison", "Each method is run several times with different seeds.", *_seeds(records)),
        ("comparison", "Ablations show which parts of a method matter.", *_ablation(records)),
        (
            "comparison",
            "Tabular or surrogate benchmarks are used where they fit, to make runs cheap and repeatable.",
            "yes" if tabular else None,
            f"tabular estimators: {', '.join(tabular)}"
            if tabular
            else "say whether a benchmark would have fit",
        ),
        (
            "comparison",
            "Hyperparameters of all methods were tuned alike (or all left at their defaults).",
            None,
            "say how each method's settings were chosen",
        ),
        (
            "comparison",
            "Numbers copied from other papers come from exactly the same setup.",
            None,
            "the report only shows runs of this study",
        ),
        (
            "reporting",
            "The full cost of each method is reported: search plus final training.",
            *_search_cost(metrics),
        ),
        (
            "reporting",
            "The hardware behind every number is named.",
            "yes" if devs else "no",
            "; ".join(devs) if devs else "no event names its device",
        ),
        (
            "reporting",
            "Failed and stopped runs are reported, not dropped.",
            "yes",
            f"{len(failed)} failed and {len(projected)} projected cells are listed with their reasons",
        ),
        (
            "reporting",
            "How the hyperparameters were tuned, and what tuning cost, is reported.",
            None,
            "describe any tuning done before the study",
        ),
    ]
    return [ChecklistItem(s, t, st, ev) for s, t, st, ev in items]
