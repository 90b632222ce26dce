"""The survey's progress: a live bar on a terminal, and the progress artifact in the Prefect UI.

:class:`TerminalProgress` shows tiles finished, failed and rejected, the rate (tiles per hour) and the
time left, on the same terminal as Prefect's log lines: the bar uses the
console of Prefect's console log handler, so log lines print above it
instead of through it.  When standard error is not a terminal (a log file, a
work pool, CI) nothing is drawn at all; the progress artifact in the Prefect
UI (:class:`ArtifactProgress`) is the record there.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any
from uuid import UUID

__all__ = ["ArtifactProgress", "TerminalProgress", "prefect_console"]


def prefect_console() -> Any:
    """The rich console Prefect's console log handler writes to (a new stderr console if none)."""
    from rich.console import Console

    for handler in logging.getLogger().handlers + logging.getLogger("prefect").handlers:
        console = getattr(handler, "console", None)
        if isinstance(console, Console):
            return console
    return Console(stderr=True)


class TerminalProgress:
    """Tiles done / failed / rejected, tiles per hour and ETA, drawn only on a terminal.

    Parameters
    ----------
    total : int
        Tiles this run will process.
    label : str
        Shown before the bar (e.g. the output folder).
    console : rich.console.Console, optional
        Where to draw; Prefect's console by default.
    force : bool, optional
        Draw even when the console is not a terminal (for tests).
    """

    def __init__(self, total: int, label: str = "tiles", *, console: Any = None, force: bool = False) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.total = int(total)
        self.counts = {"ok": 0, "rejected": 0, "failed": 0, "other": 0}
        self._lock = threading.Lock()
        self._t0 = time.monotonic()
        console = console if console is not None else prefect_console()
        self.enabled = bool(force or console.is_terminal) and self.total > 0
        self._progress = None
        if not self.enabled:
            return
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
            refresh_per_second=2,
        )
        # Prefect's console has its own theme, without the progress bar's styles: lend it rich's.
        from rich.default_styles import DEFAULT_STYLES
        from rich.theme import Theme

        self._console = console
        console.push_theme(Theme({k: v for k, v in DEFAULT_STYLES.items() if k.startswith(("bar.", "progress."))}))
        self._task = self._progress.add_task(label, total=self.total, detail=self._detail())
        self._progress.start()

    def _detail(self) -> str:
        c = self.counts
        done = sum(c.values())
        hours = (time.monotonic() - self._t0) / 3600.0
        rate = f"{done / hours:,.0f} tiles/h" if done and hours > 0 else "-- tiles/h"
        return f"ok {c['ok']}  rejected {c['rejected']}  failed {c['failed']}  {rate}"

    def tile_done(self, status: str | None) -> None:
        """Count one finished tile with the status of its ``tile.json`` (``ok``, ``rejected``, ``failed``)."""
        with self._lock:
            key = status if status in self.counts else "other"
            self.counts[key] += 1
            if self._progress is not None:
                self._progress.update(self._task, advance=1, detail=self._detail())

    def close(self) -> None:
        """Stop drawing (the last state of the bar stays on the terminal)."""
        with self._lock:
            if self._progress is not None:
                self._progress.update(self._task, detail=self._detail())
                self._progress.stop()
                self._progress = None
                self._console.pop_theme()

    def __enter__(self) -> TerminalProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ArtifactProgress:
    """The survey's progress artifact, updated as tiles finish (at most once per
    percent or per 10 s, so a survey of 100,000 tiles does not make 100,000 calls).

    Parameters
    ----------
    total : int
        Tiles this run will process.
    key : str
        The artifact's key.
    description : str
        The artifact's description.
    """

    def __init__(self, total: int, key: str, description: str) -> None:
        from prefect.artifacts import create_progress_artifact

        artifact_id = create_progress_artifact(progress=0.0, key=key, description=description)
        if not isinstance(artifact_id, UUID):  # the call is sync here; Prefect types it as maybe a coroutine
            raise TypeError(f"create_progress_artifact returned {type(artifact_id).__name__}, not a UUID")
        self.artifact_id = artifact_id
        self.total, self.done = total, 0
        self._shown, self._at = 0.0, time.monotonic()

    def tile_done(self) -> None:
        """Count one finished tile; update the artifact if it moved a percent or 10 s went by."""
        self.done += 1
        pct = 100.0 * self.done / max(self.total, 1)
        if pct - self._shown >= 1.0 or time.monotonic() - self._at >= 10.0 or self.done == self.total:
            self._show(pct)

    def finish(self) -> None:
        """Show 100 % (a run with nothing to do, too)."""
        if self._shown < 100.0:
            self._show(100.0)

    def _show(self, pct: float) -> None:
        from prefect.artifacts import update_progress_artifact

        update_progress_artifact(self.artifact_id, progress=pct)
        self._shown, self._at = pct, time.monotonic()
