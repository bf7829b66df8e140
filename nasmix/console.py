"""Terminal output: progress bars with ETA and one printed line per epoch."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

# Off a terminal (CI logs, pipes) lines are not wrapped at 80 columns.
console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)


def percent(value: float | None) -> str:
    """0.4912 -> '49.12%'; None -> '-'."""
    return "-" if value is None else f"{100 * value:.2f}%"


@contextlib.contextmanager
def progress_bar(quiet: bool = False) -> Iterator[Progress]:
    """A rich progress display (disabled when quiet or not on a terminal)."""
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=quiet or not sys.stdout.isatty(),
    )
    with progress:
        yield progress


def epoch_line(event: dict, epochs: int) -> str:
    """One line per training epoch: losses, accuracies and time."""
    parts = [
        f"epoch {event['epoch']:>3}/{epochs}",
        f"loss {event['train_loss']:.3f}",
        f"train top-1 {percent(event['train_top1'])}",
    ]
    for split in ("val", "test"):
        if f"{split}_top1" in event:
            parts.append(
                f"{split} top-1 {percent(event[f'{split}_top1'])} top-5 {percent(event[f'{split}_top5'])}"
            )
    parts.append(f"{event['train_s']:.1f}s")
    return "  ".join(parts)
