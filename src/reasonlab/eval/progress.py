"""One rich progress bar style for every long command (or a silent stand-in)."""

from __future__ import annotations

from contextlib import contextmanager

from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)


class _Silent:
    def add_task(self, *a, **k):
        return 0

    def advance(self, *a, **k):
        pass

    def update(self, *a, **k):
        pass


@contextmanager
def progress_bar(enabled: bool = True):
    if not enabled:
        yield _Silent()
        return
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), transient=False) as bar:
        yield bar
