"""The cell page's data as JSON values: a pure function of one `CellRecord`.

- the search trajectory: one-shot epochs (train and valid top-1 and loss, the mean
  entropy of the op distributions, the arch preferred) with the architecture
  weights per edge over epochs (`arch_probs` of each search_epoch event, per
  group; events of stores written before nasmix recorded them have none), or
  discrete candidates (score, best so far, cost);
- the evaluation: each epoch's train, validation and test top-1 and top-5, and
  the final test;
- the resources: peak GPU and host memory, GPU and wall seconds of each phase,
  energy, parameters, FLOPs, devices;
- the failure (reason, error, traceback), caps and notes of the strategy;
- the chosen arch (the arch the search prefers so far, while it runs) as its
  text and its graphs (`report.archgraph`, through `report.content.describe_arch`).

Stored data is read defensively: a field of the wrong type is left out, never
trusted. Strings are passed on as they are (the page writes them as text).

Example:
    >>> from nasmix.study.schema import CellRecord
    >>> view = cell_detail(CellRecord("c", "c", "nb201", "darts", "supernet", "d", 0, "pending", {}, ()))
    >>> view["search"]["heatmaps"], view["arch"]
    ([], None)
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence

from nasmix import registry
from nasmix.report import metrics
from nasmix.report.content import describe_arch
from nasmix.study.schema import CellRecord
from nasmix.validate import is_real

SEARCH_EPOCH_FIELDS = (
    "epoch",
    "epochs",
    "train_loss",
    "train_top1",
    "valid_loss",
    "valid_top1",
    "entropy",
    "lr",
    "epoch_s",
    "gpu_s",
    "elapsed_s",
    "peak_gpu_bytes",
    "partial",
)
CANDIDATE_FIELDS = (
    "index",
    "score",
    "best_score",
    "cost_s",
    "cumulative_cost_s",
    "elapsed_s",
    "gpu_s",
)
EVAL_FIELDS = (
    "epoch",
    "lr",
    "train_loss",
    "train_top1",
    "val_loss",
    "val_top1",
    "val_top5",
    "test_loss",
    "test_top1",
    "test_top5",
    "train_s",
    "eval_s",
    "train_gpu_s",
    "peak_gpu_bytes",
)
SKIP_EXTRA = ("arch_probs", "arch_ops", "v", "arch")


def _num(value) -> float | int | None:
    if not is_real(value):
        return None
    return value


def _text(value) -> str | None:
    return value if isinstance(value, str) else None


def _numbers(data: dict, fields: Sequence[str]) -> dict:
    return {f: _num(data.get(f)) for f in fields}


def _probs(rows) -> list[list[float]] | None:
    """An edges x ops matrix of probabilities, or None when the stored value is not one."""
    if not isinstance(rows, list) or not rows or not all(isinstance(r, list) and r for r in rows):
        return None
    if len({len(r) for r in rows}) != 1 or not all(_num(p) is not None for r in rows for p in r):
        return None
    return [[float(p) for p in r] for r in rows]


def heatmaps(epochs: Sequence[dict]) -> list[dict]:
    """The architecture weights of each group over epochs: {group, ops, epochs, probs[epoch][edge][op]}.

    Args:
        epochs: the search_epoch events' data, in order.

    Returns:
        One dict per group (in the order first met); [] when no event carries `arch_probs`.

    Example:
        >>> heatmaps([{"epoch": 1, "arch_probs": {"cell": [[0.5, 0.5]]}, "arch_ops": {"cell": ["a", "b"]}}])
        [{'group': 'cell', 'ops': ['a', 'b'], 'epochs': [1], 'probs': [[[0.5, 0.5]]]}]
    """
    out: dict[str, dict] = {}
    for data in epochs:
        groups = data.get("arch_probs")
        if not isinstance(groups, dict):
            continue
        ops_given = data.get("arch_ops")
        names = ops_given if isinstance(ops_given, dict) else {}
        for group, rows in groups.items():
            probs = _probs(rows)
            if probs is None:
                continue
            entry = out.setdefault(group, {"group": group, "ops": None, "epochs": [], "probs": []})
            if entry["probs"] and len(entry["probs"][0]) != len(probs):
                continue  # another shape than the group's first: not the same edges
            ops = names.get(group)
            if isinstance(ops, list) and len(ops) == len(probs[0]) and all(isinstance(o, str) for o in ops):
                entry["ops"] = ops
            entry["epochs"].append(_num(data.get("epoch")))
            entry["probs"].append(probs)
    for entry in out.values():
        if entry["ops"] is None or len(entry["ops"]) != len(entry["probs"][0][0]):
            entry["ops"] = [f"op {k}" for k in range(len(entry["probs"][0][0]))]
    return list(out.values())


def _extra(data: dict) -> dict:
    """A strategy's scalar extra fields of an epoch (tau, stage, subnet...)."""
    known = set(SEARCH_EPOCH_FIELDS) | set(SKIP_EXTRA)
    return {k: v for k, v in data.items() if k not in known and (isinstance(v, str) or _num(v) is not None)}


def _search(rec: CellRecord) -> dict:
    epochs = rec.of_kind("search_epoch")
    rows = [
        {
            **_numbers(d, SEARCH_EPOCH_FIELDS),
            "arch": _text(d.get("arch")),
            "extra": _extra(d),
        }
        for d in epochs
    ]
    cands = [
        {
            **_numbers(d, CANDIDATE_FIELDS),
            "arch": _text(d.get("arch")),
            "best_arch": _text(d.get("best_arch")),
            "simulated": d.get("simulated") is True,
        }
        for d in rec.of_kind("candidate")
    ]
    kind = "oneshot" if rows else "discrete" if cands else None
    maps = heatmaps(epochs)
    note = None
    if rows and not maps:
        note = "these search_epoch events carry no architecture weights (stored before nasmix recorded them)"
    return {
        "kind": kind,
        "epochs": rows,
        "candidates": cands,
        "heatmaps": maps,
        "note": note,
    }


def _eval(rec: CellRecord) -> dict:
    rows = [
        {**_numbers(d, EVAL_FIELDS), "checkpoint": isinstance(d.get("checkpoint"), str)}
        for d in rec.of_kind("eval_epoch")
    ]
    end = rec.event("end") or {}
    final = None
    if _num(end.get("test_top1")) is not None:
        final = _numbers(end, ("test_top1", "test_top5", "epochs_done", "epochs"))
    return {"epochs": rows, "final": final}


def _sum(values) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) if values else None


def _resources(rec: CellRecord) -> dict:
    chosen = rec.event("arch_chosen") or {}
    searched = rec.of_kind("search_epoch")
    cands = rec.of_kind("candidate")
    evals = rec.of_kind("eval_epoch")
    search_s = _num(chosen.get("search_s"))
    if search_s is None:  # still searching: what the events add up to so far
        search_s = _sum(_num(d.get("epoch_s")) for d in searched)
        if cands and search_s is None:
            search_s = _num(cands[-1].get("elapsed_s")) or _num(cands[-1].get("cumulative_cost_s"))
    search_gpu = _num(chosen.get("search_gpu_s"))
    if search_gpu is None:
        search_gpu = _sum(_num(d.get("gpu_s")) for d in searched + cands)
    hosts = [_num(e.data.get("peak_host_bytes")) for e in rec.events]
    return {
        "peak_gpu_bytes": metrics.peak_gpu_bytes(rec),
        "peak_host_bytes": max((h for h in hosts if h), default=None),
        "search_s": search_s,
        "search_gpu_s": search_gpu,
        "eval_train_s": _sum(_num(d.get("train_s")) for d in evals),
        "eval_gpu_s": _sum(_num(d.get("train_gpu_s")) for d in evals),
        "eval_test_s": _sum(_num(d.get("eval_s")) for d in evals),
        "energy_j": metrics.energy_joules(rec),
        "devices": [d for d in metrics.devices(rec) if isinstance(d, str)],
        "params": _num(chosen.get("params")),
        "flops": _num(chosen.get("flops")),
    }


def _failure(rec: CellRecord) -> dict | None:
    if rec.state != "failed":
        return None
    end = rec.event("end") or {}
    where = "eval" if rec.event("arch_chosen") else "search"
    return {
        "reason": _text(end.get("reason")),
        "error": _text(end.get("error")),
        "traceback": _text(end.get("traceback")),
        "failed_in": where,
    }


@functools.lru_cache(maxsize=256)
def _describe(space: str, options: str, arch: str) -> tuple[str, tuple, str]:
    """(text, graphs, source) of an arch, per space, options and arch string (cached: archs repeat)."""

    def space_for(_rec):
        return registry.create("space", space, **json.loads(options))

    return describe_arch(None, arch, space_for)


def _arch(rec: CellRecord) -> dict | None:
    """The chosen arch, else the arch the running search prefers so far."""
    chosen = _text((rec.event("arch_chosen") or {}).get("arch")) or _text(
        (rec.event("end") or {}).get("arch")
    )
    current, what = chosen, "chosen"
    if current is None:
        epochs = rec.of_kind("search_epoch")
        cands = rec.of_kind("candidate")
        current = (
            _text(epochs[-1].get("arch")) if epochs else _text(cands[-1].get("best_arch")) if cands else None
        )
        what = "preferred so far" if epochs else "best so far"
    if current is None:
        return None
    options = (rec.settings.get("options") or {}).get("space") if isinstance(rec.settings, dict) else None
    text, graphs, source = _describe(rec.space, json.dumps(options or {}, sort_keys=True), current)
    return {
        "arch": current,
        "what": what,
        "describe": text,
        "source": source,
        "graphs": [
            {
                "name": g.name,
                "nodes": list(g.nodes),
                "edges": [list(e) for e in g.edges],
            }
            for g in graphs
        ],
    }


def cell_detail(rec: CellRecord) -> dict:
    """The cell page's sections of one cell (see the module docstring and docs/serve.md).

    Args:
        rec: the cell with its events.

    Returns:
        A dict with search, eval, resources, failure, caps, notes, arch and settings.
    """
    caps = [
        {
            **_numbers(d, ("done", "total", "elapsed_s", "projected_s")),
            "reason": _text(d.get("reason")),
        }
        for d in rec.of_kind("capped")
    ]
    for cap, e in zip(caps, (e for e in rec.events if e.kind == "capped")):
        cap["phase"] = e.phase
    notes = [_text(d.get("reason")) for d in rec.of_kind("partial_fallback", "edge_norm_fallback")]
    return {
        "search": _search(rec),
        "eval": _eval(rec),
        "resources": _resources(rec),
        "failure": _failure(rec),
        "caps": caps,
        "notes": [n for n in notes if n],
        "arch": _arch(rec),
        "settings": rec.settings,
    }
