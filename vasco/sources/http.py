"""A small, polite HTTP layer for the archive clients.

* Connect and read timeouts on every request, and a total time per attempt
  (a server that drips bytes forever is cut off).
* Retries, with exponential backoff and full jitter (the sleep before retry
  ``k`` is uniform in ``[0, min(backoff_max_s, backoff_base_s * 2**(k-1))]``),
  on timeouts, connection errors, bodies cut short, HTTP 429 and 5xx.  A
  ``Retry-After`` header (seconds or an HTTP-date) on 429/503 replaces the
  backoff; a server that asks for more than ``retry_after_max_s`` is not
  hammered sooner: the request fails at once.
* No retry on any other 4xx.
* A maximum answer size: checked against ``Content-Length`` before reading
  and counted while streaming; past it the transfer is aborted.
* Downloads stream into a temporary file in the destination folder (so the
  caller can check it and rename it into place atomically); the temporary
  file is removed on every failure.

Every failure is a :class:`SourceError` whose ``reason`` is a short token
built from the service name (``DSS``, ``VIZIER``, ``XMATCH``):
``FAIL_<S>_HTTP_<code>``, ``FAIL_<S>_TIMEOUT``, ``FAIL_<S>_CONNECTION``,
``FAIL_<S>_TRUNCATED`` (body shorter than announced), ``FAIL_<S>_TOO_BIG``,
``FAIL_<S>_DECODE`` (broken content encoding), ``FAIL_<S>_BAD_URL``.

``sleep`` and ``rng`` are injectable so that tests check the backoff
without waiting.

The retry loop is our own, not urllib3's ``Retry`` (which requests can
mount): ``Retry`` acts only until the response headers arrive, so a body
cut short, a read timeout in the body or a transfer past
``total_timeout_s`` (all met while streaming) would need a second loop
anyway; its backoff is not full jitter (no wait before the first retry,
then ``factor * 2**(n-1)`` plus an additive jitter) and takes neither an
injected ``sleep`` nor an injected random source; and it waits out any
``Retry-After``, however long, where this client fails at once past
``retry_after_max_s``.
"""

from __future__ import annotations

import contextlib
import email.utils
import io
import logging
import os
import random
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, TypeVar

import requests
from urllib3.exceptions import ReadTimeoutError

from vasco.sources.config import HttpConfig

__all__ = ["SourceError", "HttpClient", "HttpAnswer", "parse_retry_after"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_CHUNK = 1 << 16


class SourceError(RuntimeError):
    """A data-source failure with a short reason token (e.g. ``FAIL_DSS_HTTP_404``)."""

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:
        # Picklable with its two arguments (Prefect and process pools pickle exceptions).
        return (type(self), (self.reason, self.message))


class _Retry(Exception):
    """An attempt failed in a way worth retrying."""

    def __init__(self, error: SourceError, retry_after: float | None = None):
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


@dataclass(frozen=True)
class HttpAnswer:
    """A successful answer read into memory."""

    status: int
    headers: Mapping[str, str]
    content: bytes
    url: str


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP-date).

    Returns None when absent or unparseable, and 0 for a date in the past.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def _snippet(data: bytes, limit: int = 160) -> str:
    text = data[: limit * 4].decode("utf-8", errors="replace")
    text = " ".join(text.split())
    return text[:limit]


class HttpClient:
    """Polite HTTP requests for one service.

    Parameters
    ----------
    service : str
        Upper-case service name used in reason tokens (``DSS`` gives
        ``FAIL_DSS_TIMEOUT``...).
    config : HttpConfig, optional
        Timeouts, retries and limits; the defaults of :class:`HttpConfig`.
    sleep : callable, optional
        ``sleep(seconds)``, ``time.sleep`` by default (tests record the delays).
    rng : random.Random, optional
        Source of the backoff jitter.
    """

    def __init__(
        self,
        service: str,
        config: HttpConfig | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ):
        if not service or not service.replace("_", "").isalnum():
            raise ValueError(f"service name must be alphanumeric, got {service!r}")
        self.service = service.upper()
        self.config = config or HttpConfig()
        self._sleep = sleep
        self._rng = rng or random.Random()

    def with_service(self, service: str, config: HttpConfig | None = None) -> HttpClient:
        """The same sleep and jitter source, for another service (or other limits)."""
        return HttpClient(service, config or self.config, sleep=self._sleep, rng=self._rng)

    # ------------------------------------------------------------------ tokens
    def reason(self, what: str) -> str:
        return f"FAIL_{self.service}_{what}"

    def error(self, what: str, message: str) -> SourceError:
        return SourceError(self.reason(what), message)

    # ------------------------------------------------------------------ public
    def download(
        self,
        url: str,
        dest_dir: Path,
        *,
        params: Mapping[str, Any] | None = None,
        prefix: str = "download",
    ) -> Path:
        """GET ``url`` into a new temporary file in ``dest_dir`` and return its path.

        The caller owns the returned file (checks it, renames it into place or
        deletes it).  On failure no file is left and :class:`SourceError` is
        raised.
        """
        dest_dir = Path(dest_dir)
        dest_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{prefix}.", suffix=".part", dir=dest_dir)
        os.close(fd)
        tmp = Path(name)

        def attempt() -> Path:
            with open(tmp, "wb") as fh:
                self._attempt("GET", url, fh, params=params)
                fh.flush()
                os.fsync(fh.fileno())
            return tmp

        try:
            return self._retrying(attempt)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise

    def fetch(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: Any = None,
        files: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpAnswer:
        """Send a request and read the answer into memory (size-capped)."""

        def attempt() -> HttpAnswer:
            buf = io.BytesIO()
            status, hdrs, final_url = self._attempt(
                method, url, buf, params=params, data=data, files=files, headers=headers
            )
            return HttpAnswer(status, hdrs, buf.getvalue(), final_url)

        return self._retrying(attempt)

    # ------------------------------------------------------------------ retries
    def backoff(self, attempt: int) -> float:
        """Full-jitter backoff before retry number ``attempt`` (1-based)."""
        cfg = self.config
        ceiling = min(cfg.backoff_max_s, cfg.backoff_base_s * (2.0 ** (attempt - 1)))
        return self._rng.uniform(0.0, ceiling)

    def _retrying(self, attempt: Callable[[], T]) -> T:
        cfg = self.config
        for k in range(1, cfg.max_attempts + 1):
            try:
                return attempt()
            except _Retry as retry:
                if k == cfg.max_attempts:
                    err = retry.error
                    suffix = f" (after {k} attempts)" if k > 1 else ""
                    raise SourceError(err.reason, err.message + suffix) from None
                delay = retry.retry_after if retry.retry_after is not None else self.backoff(k)
                log.warning(
                    "%s: attempt %d/%d failed (%s); retrying in %.1f s",
                    self.service,
                    k,
                    cfg.max_attempts,
                    retry.error,
                    delay,
                )
                self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ one attempt
    def _attempt(
        self,
        method: str,
        url: str,
        sink: IO[bytes],
        *,
        params: Mapping[str, Any] | None = None,
        data: Any = None,
        files: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, dict[str, str], str]:
        cfg = self.config
        sink.seek(0)
        sink.truncate()
        start = time.monotonic()
        hdrs = {"User-Agent": cfg.user_agent}
        if headers:
            hdrs.update(headers)
        try:
            with requests.Session() as session:
                with session.request(
                    method,
                    url,
                    params=params,
                    data=data,
                    files=files,
                    headers=hdrs,
                    timeout=(cfg.connect_timeout_s, cfg.read_timeout_s),
                    stream=True,
                    allow_redirects=True,
                ) as resp:
                    self._check_status(resp, url)
                    self._check_length(resp, url)
                    n = 0
                    for chunk in resp.iter_content(chunk_size=_CHUNK):
                        n += len(chunk)
                        if n > cfg.max_bytes:
                            raise self.error(
                                "TOO_BIG", f"{url}: answer exceeds the limit of {cfg.max_bytes} bytes; aborted"
                            )
                        if time.monotonic() - start > cfg.total_timeout_s:
                            raise _Retry(
                                self.error("TIMEOUT", f"{url}: transfer took longer than {cfg.total_timeout_s:g} s")
                            )
                        sink.write(chunk)
                    return resp.status_code, dict(resp.headers), resp.url
        except requests.exceptions.Timeout as exc:
            raise _Retry(self.error("TIMEOUT", f"{url}: {type(exc).__name__} ({exc})")) from None
        except requests.exceptions.ChunkedEncodingError as exc:
            raise _Retry(self.error("TRUNCATED", f"{url}: connection broken mid-answer ({exc})")) from None
        except requests.exceptions.ContentDecodingError as exc:
            raise self.error("DECODE", f"{url}: cannot decode the answer ({exc})") from None
        except (
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
            requests.exceptions.InvalidURL,
        ) as exc:
            raise self.error("BAD_URL", f"{url}: {exc}") from None
        except requests.exceptions.TooManyRedirects as exc:
            raise self.error("REDIRECTS", f"{url}: {exc}") from None
        except requests.exceptions.ConnectionError as exc:
            # requests wraps a read timeout in the body as a ConnectionError.
            if exc.args and isinstance(exc.args[0], ReadTimeoutError):
                raise _Retry(self.error("TIMEOUT", f"{url}: read timed out in the body ({exc})")) from None
            raise _Retry(self.error("CONNECTION", f"{url}: {exc}")) from None
        except requests.exceptions.RequestException as exc:
            raise _Retry(self.error("CONNECTION", f"{url}: {type(exc).__name__} ({exc})")) from None

    def _check_status(self, resp: requests.Response, url: str) -> None:
        code = resp.status_code
        if 200 <= code < 300:
            return
        try:
            body = next(resp.iter_content(chunk_size=1024), b"")
        except requests.exceptions.RequestException:
            body = b""
        msg = f"{url}: HTTP {code} {resp.reason or ''}".rstrip()
        if body:
            msg += f" ({_snippet(body)})"
        error = self.error(f"HTTP_{code}", msg)
        if code == 429 or code >= 500:
            wait = parse_retry_after(resp.headers.get("Retry-After"))
            if wait is not None and wait > self.config.retry_after_max_s:
                raise SourceError(
                    error.reason,
                    f"{msg}; the server asks to wait {wait:.0f} s, more than the "
                    f"{self.config.retry_after_max_s:g} s allowed",
                )
            raise _Retry(error, retry_after=wait)
        raise error

    def _check_length(self, resp: requests.Response, url: str) -> None:
        length = resp.headers.get("Content-Length")
        if length is None or resp.headers.get("Content-Encoding"):
            return
        try:
            n = int(length)
        except ValueError:
            return
        if n > self.config.max_bytes:
            raise self.error("TOO_BIG", f"{url}: Content-Length {n} exceeds the limit of {self.config.max_bytes} bytes")
