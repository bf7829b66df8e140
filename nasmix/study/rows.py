"""A store's rows as typed records, and what makes a row malformed.

The store (nasmix.study.store) reads rows with SQL; these pure functions turn
them into records (nasmix.study.schema) and say what is wrong with a row that
SQLite's own checks cannot see: an event whose bytes no longer match its
checksum (a digit of a figure changed), data that is not a JSON object, an
unknown event kind, an end event with impossible figures, a cell whose config
does not hash to its id.

Example:
    >>> row = (1, "0123456789ab", "attempt/1", "attempt", "setup", 1.5, '{"device": "cpu"}', None)
    >>> record, problem = event_record(row)
    >>> record.event.device, problem
    ('cpu', None)
    >>> event_record(row[:6] + ('{"device": "cpu"', None))[1]
    "event 1 (cell '0123456789ab', key 'attempt/1') holds data that is not JSON"
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass

from nasmix.errors import NasmixError
from nasmix.events import END_STATES, End
from nasmix.study.schema import CellRecord, EventRecord, cell_state, config_id, estimator_kind
from nasmix.validate import is_real

CELL_ID = re.compile(r"[0-9a-f]{12}")  # a cell id: the first 12 hex digits of its config's SHA-256
RESCUE = (
    "Restore it from a backup, or rescue what SQLite can still read with "
    "`sqlite3 BAD.db .recover | sqlite3 NEW.db` and run the study on NEW.db (cells without an end "
    "event run again)"
)


@dataclass(frozen=True)
class Claim:
    """Who runs a cell: the worker holding its lease and the lease's clocks (Unix seconds)."""

    cell: str
    worker: str
    claimed: float
    heartbeat: float


def event_crc(cell: str, key: str, kind: str, phase: str, t: float, data: str) -> int:
    """The checksum of an event row: a byte that changes in any column (a digit of a
    figure in its JSON) changes it, which SQLite's own checks do not see."""
    text = "\x1f".join((cell, key, kind, phase, repr(float(t)), data))
    return zlib.crc32(text.encode("utf-8", "surrogatepass"))


def event_record(row: tuple) -> tuple[EventRecord | None, str | None]:
    """The record of an events row, or what is wrong with the row."""
    seq, cell, key, kind, phase, t, data, crc = row
    where = f"event {seq} (cell {cell!r}, key {key!r})"
    texts = (cell, key, kind, phase, data)
    if not all(isinstance(v, str) for v in texts) or not isinstance(t, (int, float)) or isinstance(t, bool):
        return None, f"{where} has a column of the wrong type"
    if (
        crc is not None and event_crc(cell, key, kind, phase, t, data) != crc
    ):  # rows from before checksums have none
        return None, f"{where} does not match its checksum (a byte of it changed)"
    try:
        parsed = json.loads(data)
    except ValueError:
        return None, f"{where} holds data that is not JSON"
    if not isinstance(parsed, dict):
        return None, f"{where} holds {type(parsed).__name__} data, not an object"
    if (key == "end") != (kind in END_STATES):
        return (
            None,
            f"{where} has kind {kind!r}, which {'an end' if key == 'end' else 'only an end'} event may not",
        )
    record = EventRecord(key, kind, phase, parsed, seq, cell, t)
    try:
        event = record.event  # the typed event, parsed once and kept (EventRecord caches it)
    except NasmixError as err:  # an unknown kind, unreadable fields, a newer version
        return None, f"{where}: {err}"
    if isinstance(event, End):
        problem = end_problem(event)
        if problem:
            return None, f"{where}: {problem}"
    return record, None


def end_problem(end: End) -> str | None:
    """What is impossible in an end event's figures (a report prints them as results)."""
    for name in ("test_top1", "test_top5"):
        value = getattr(end, name)
        number = is_real(value)
        if value is not None and not (number and 0 <= value <= 1):
            return f"{name} is {value!r}, not an accuracy in [0, 1]"
    for name in ("epochs_done", "epochs", "params", "flops"):
        value = getattr(end, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            return f"{name} is {value!r}, not a count"
    return None


def cell_problem(row: tuple) -> str | None:
    """What is wrong with a cells row: an id that is not its config's hash, or columns that differ."""
    id_, _study, _label, space, strategy, estimator, dataset, seed, config = row
    if not isinstance(id_, str) or not CELL_ID.fullmatch(id_):
        return f"cell {id_!r} has an id that is not 12 hexadecimal digits"
    if not isinstance(config, str):
        return f"cell {id_} has no config text"
    try:
        body = json.loads(config)
    except ValueError:
        return f"cell {id_}'s config is not JSON"
    if config_id(config) != id_:
        return f"cell {id_}'s config does not hash to its id (it was changed)"
    columns = dict(space=space, strategy=strategy, estimator=estimator, dataset=dataset, seed=seed)
    if not isinstance(body, dict) or any(body.get(k) != v for k, v in columns.items()):
        return f"cell {id_}'s columns differ from its config"
    return None


def cell_record(row: tuple, events: tuple[EventRecord, ...]) -> CellRecord:
    """The CellRecord of a cells-table row and its events."""
    id_, study, label, space, strategy, estimator, dataset, seed, config = row
    end = next((e.kind for e in events if e.key == "end"), None)
    settings = json.loads(config).get("settings", {})
    state = cell_state(end, bool(events))
    kind = estimator_kind(estimator)
    cell = (id_, label, space, strategy, estimator, dataset, seed)
    return CellRecord(*cell, state, settings, events, kind, study)


def jsonable(value):
    """JSON for numpy scalars and paths in event data."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)
