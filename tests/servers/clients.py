"""Client-side helpers for the stand-in tests: an HTTP client that never really sleeps."""

from __future__ import annotations

import random
from typing import Any

from vasco.sources.config import HttpConfig
from vasco.sources.http import HttpClient


class Recorder:
    """An injected sleep: records the delays, waits for none."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def client(sleep: Recorder, **overrides: float) -> HttpClient:
    """An :class:`HttpClient` with short timeouts, 5 attempts and a seeded jitter."""
    cfg: dict[str, Any] = dict(
        connect_timeout_s=2.0,
        read_timeout_s=2.0,
        total_timeout_s=20.0,
        max_attempts=5,
        backoff_base_s=1.0,
        backoff_max_s=8.0,
        retry_after_max_s=30.0,
    )
    cfg.update(overrides)
    return HttpClient("TEST", HttpConfig(**cfg), sleep=sleep, rng=random.Random(1))
