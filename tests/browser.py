"""Drive the Debian ``chromium`` headless for the report page tests.

Two ways in:

* :func:`dump_dom` and :func:`screenshot` use chromium's own command-line
  modes (``--dump-dom``, ``--screenshot``) under a virtual-time budget;
* :func:`console_messages` (and :func:`evaluate`, which runs JavaScript in
  a loaded page) speak the Chrome DevTools Protocol over
  ``--remote-debugging-pipe`` (file descriptors 3 and 4, NUL-separated JSON;
  standard library only), because chromium's stderr log
  (``--enable-logging=stderr``) prints every console message of a web page
  as ``INFO:CONSOLE`` whatever its level, so warnings and errors cannot be
  told from ``console.log`` there.  Over the protocol each message comes
  with its level: ``Runtime.consoleAPICalled`` (console.*),
  ``Runtime.exceptionThrown`` (uncaught exceptions, syntax errors) and
  ``Log.entryAdded`` (the browser's own messages: failed loads, CSP ...).

Every chromium runs in its own process group with a throw-away profile
under the caller's temporary folder, and the group is killed when the call
ends, so no stray renderer survives a test.  Tests call
:func:`require_chromium` first: it skips when ``chromium`` is not on PATH.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

__all__ = [
    "TIMEOUT_S",
    "chromium_binary",
    "console_messages",
    "console_problems",
    "dump_dom",
    "evaluate",
    "file_url",
    "require_chromium",
    "screenshot",
]

#: Wall-clock limit of one chromium run, seconds.
TIMEOUT_S = 120

#: Window size of the screenshots and of the DevTools page, CSS px.
WINDOW = (1280, 1600)

_BASE_FLAGS = (
    "--headless",
    "--no-sandbox",  # the tests run as root
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-sync",
    "--disable-component-update",
    "--mute-audio",
    "--hide-scrollbars",
)


def chromium_binary() -> str | None:
    """The ``chromium`` (or ``chromium-browser``) on PATH, or None."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def require_chromium() -> str:
    """The chromium binary; skip the calling test when there is none."""
    import pytest

    found = chromium_binary()
    if found is None:
        pytest.skip("chromium is not on PATH: apt-get install chromium (scripts/install.sh installs it)")
    return found


def file_url(path_or_url: str | Path, query: str = "") -> str:
    """A ``file://`` URL for a local path (URLs are returned as given), with ``?query`` if any."""
    text = str(path_or_url)
    if "://" in text:
        url = text
    else:
        url = Path(text).resolve().as_uri()
    return f"{url}?{query}" if query else url


def _flags(tmp: Path, name: str) -> list[str]:
    profile = Path(tmp) / f"chromium-{name}-{os.getpid()}-{time.monotonic_ns()}"
    profile.mkdir(parents=True, exist_ok=True)
    return [*_BASE_FLAGS, f"--user-data-dir={profile}"]


def _group_alive(pgid: int) -> bool:
    """Whether a live (not zombie) process is left in process group ``pgid``."""
    proc_fs = Path("/proc")
    if not proc_fs.is_dir():
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    for entry in proc_fs.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces, so split after its ")".
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _kill_group(proc: subprocess.Popen[Any], grace_s: float = 10.0) -> None:
    """End the process group ``proc`` leads (it was started in a new session).

    Chromium gets ``grace_s`` to exit and its helpers up to 2 s more to
    follow; whatever is left of the group is then killed.
    """
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace_s)
    deadline = time.monotonic() + min(grace_s, 2.0)
    while _group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _group_alive(proc.pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def _run(args: list[str], timeout: float = TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """Run chromium to completion in its own process group; kill the group afterwards."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc, grace_s=0.0)
        out, err = proc.communicate()
        raise RuntimeError(f"chromium did not finish within {timeout} s: {args}\n{err[-2000:]}") from None
    finally:
        _kill_group(proc)
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def dump_dom(url_or_path: str | Path, tmp: Path, *, query: str = "", budget_ms: int = 5000) -> str:
    """The DOM of a page after its scripts ran (``--dump-dom``), as HTML text.

    ``query`` is appended to the file URL (``"eager=1"``); ``budget_ms`` is
    chromium's virtual-time budget (timers and loads run in virtual time).
    """
    binary = require_chromium()
    args = [binary, *_flags(tmp, "dom"), f"--virtual-time-budget={budget_ms}",
            "--run-all-compositor-stages-before-draw", f"--window-size={WINDOW[0]},{WINDOW[1]}",
            "--dump-dom", file_url(url_or_path, query)]
    done = _run(args)
    if done.returncode != 0 or "<html" not in done.stdout.lower():
        raise RuntimeError(f"chromium --dump-dom failed (exit {done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def screenshot(url_or_path: str | Path, out_png: Path, tmp: Path, *, query: str = "",
               window: tuple[int, int] = WINDOW, budget_ms: int = 5000) -> Path:
    """A PNG screenshot of the page at ``window`` size (``--screenshot``); returns ``out_png``."""
    binary = require_chromium()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    out_png.unlink(missing_ok=True)
    args = [binary, *_flags(tmp, "shot"), f"--virtual-time-budget={budget_ms}",
            "--run-all-compositor-stages-before-draw", f"--window-size={window[0]},{window[1]}",
            f"--screenshot={out_png}", file_url(url_or_path, query)]
    done = _run(args)
    if not out_png.is_file():
        raise RuntimeError(f"chromium --screenshot wrote no {out_png} (exit {done.returncode}): {done.stderr[-2000:]}")
    return out_png


class _Pipe:
    """A DevTools Protocol connection over chromium's ``--remote-debugging-pipe``."""

    def __init__(self, binary: str, flags: list[str]) -> None:
        cmd_r, self._cmd_w = os.pipe()  # we write commands, chromium reads fd 3
        self._resp_r, resp_w = os.pipe()  # chromium writes fd 4, we read
        # Above 4, so the shell's redirections cannot clobber them.
        hi_r = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 10)
        hi_w = fcntl.fcntl(resp_w, fcntl.F_DUPFD, 10)
        os.close(cmd_r)
        os.close(resp_w)
        shell = f'exec "$0" "$@" 3<&{hi_r} 4>&{hi_w} {hi_r}<&- {hi_w}>&-'
        self.proc = subprocess.Popen(
            ["bash", "-c", shell, binary, *flags, "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(hi_r, hi_w), start_new_session=True,
        )
        os.close(hi_r)
        os.close(hi_w)
        self._buf = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.send("Browser.close")
        _kill_group(self.proc)
        for fd in (self._cmd_w, self._resp_r):
            with contextlib.suppress(OSError):
                os.close(fd)

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> int:
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        return self._next_id

    def read(self, deadline: float) -> dict[str, Any] | None:
        """The next message, or None at the deadline."""
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self._resp_r], [], [], left)
            if not ready:
                return None
            chunk = os.read(self._resp_r, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict[str, Any]:
        """Send a command and return its result; events read meanwhile are kept in :attr:`events`."""
        want = self.send(method, params, session)
        deadline = time.monotonic() + timeout
        while True:
            msg = self.read(deadline)
            if msg is None:
                raise RuntimeError(f"chromium did not answer {method} within {timeout} s")
            if msg.get("id") == want:
                if "error" in msg:
                    raise RuntimeError(f"DevTools {method} failed: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def drain(self, seconds: float) -> None:
        """Keep reading events for ``seconds``."""
        deadline = time.monotonic() + seconds
        while (msg := self.read(deadline)) is not None:
            if "method" in msg:
                self.events.append(msg)


def _page_session(pipe: _Pipe, timeout: float) -> str:
    """Attach to the page target chromium opened; return the session id."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        infos = pipe.call("Target.getTargets").get("targetInfos", [])
        pages = [t for t in infos if t.get("type") == "page"]
        if pages:
            got = pipe.call("Target.attachToTarget", {"targetId": pages[0]["targetId"], "flatten": True})
            return got["sessionId"]
        time.sleep(0.1)
    raise RuntimeError("chromium opened no page target")


def _message_text(event: dict[str, Any]) -> str | None:
    """``"<level>: <text> (<url>:<line>)"`` for a console-like event, None for other events."""
    p = event.get("params", {})
    method = event.get("method")
    if method == "Runtime.consoleAPICalled":
        kind = p.get("type", "log")
        level = {"warning": "warning", "error": "error", "assert": "error"}.get(kind, kind)
        text = " ".join(str(a.get("value", a.get("description", a.get("type", "")))) for a in p.get("args", []))
        frames = (p.get("stackTrace") or {}).get("callFrames") or [{}]
        where = f"{frames[0].get('url', '')}:{frames[0].get('lineNumber', -1) + 1}"
    elif method == "Runtime.exceptionThrown":
        d = p.get("exceptionDetails", {})
        level = "error"
        text = f"{d.get('text', '')} {(d.get('exception') or {}).get('description', '')}".strip()
        where = f"{d.get('url', '')}:{d.get('lineNumber', -1) + 1}"
    elif method == "Log.entryAdded":
        e = p.get("entry", {})
        level = e.get("level", "info")
        text = f"[{e.get('source', '')}] {e.get('text', '')}"
        where = f"{e.get('url', '')}:{e.get('lineNumber', -1) + 1}"
    else:
        return None
    return f"{level}: {text} ({where})"


_READY_JS = "document.readyState === 'complete' && !!document.body && document.body.dataset.ready === '1'"


def _open_page(pipe: _Pipe, url_or_path: str | Path, query: str, wait_ready: bool, timeout: float) -> str:
    """Navigate the pipe's page to the URL and wait until it is ready; return the session id."""
    session = _page_session(pipe, timeout)
    for domain in ("Runtime.enable", "Log.enable", "Page.enable"):
        pipe.call(domain, session=session)
    pipe.call("Page.navigate", {"url": file_url(url_or_path, query)}, session=session)
    deadline = time.monotonic() + timeout
    expr = _READY_JS if wait_ready else "document.readyState === 'complete'"
    while True:
        got = pipe.call("Runtime.evaluate", {"expression": expr, "returnByValue": True}, session=session)
        if (got.get("result") or {}).get("value") is True:
            return session
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url_or_path} was not ready within {timeout} s (wait_ready={wait_ready})")
        pipe.drain(0.1)


def console_messages(url_or_path: str | Path, tmp: Path, *, query: str = "", wait_ready: bool = True,
                     settle_s: float = 0.5, timeout: float = 60.0) -> list[str]:
    """Every console message, uncaught exception and browser log entry of a page, in order.

    Each is ``"<level>: <text> (<url>:<line>)"`` with level ``error``,
    ``warning``, ``info``, ``log``, ``debug`` or ``verbose``.  The page is
    loaded in a fresh headless chromium driven over the DevTools pipe; the
    call waits for ``document.body.dataset.ready === "1"`` (``wait_ready``)
    or for the load event, then ``settle_s`` more for late messages.

    Raises
    ------
    RuntimeError
        If chromium fails, or the page is not ready within ``timeout`` seconds.
    """
    binary = require_chromium()
    pipe = _Pipe(binary, [*_flags(tmp, "cdp"), f"--window-size={WINDOW[0]},{WINDOW[1]}"])
    try:
        _open_page(pipe, url_or_path, query, wait_ready, timeout)
        pipe.drain(settle_s)
    finally:
        pipe.close()
    return [t for t in (_message_text(e) for e in pipe.events) if t is not None]


def evaluate(url_or_path: str | Path, tmp: Path, expressions: list[str], *, query: str = "",
             wait_ready: bool = True, timeout: float = 60.0) -> tuple[list[Any], list[str]]:
    """Run JavaScript expressions in a loaded page, in order; return their values and the console messages.

    Each expression's value is returned by value (JSON); promises are
    awaited.  An expression that throws raises RuntimeError.
    """
    binary = require_chromium()
    pipe = _Pipe(binary, [*_flags(tmp, "eval"), f"--window-size={WINDOW[0]},{WINDOW[1]}"])
    values: list[Any] = []
    try:
        session = _open_page(pipe, url_or_path, query, wait_ready, timeout)
        for expr in expressions:
            got = pipe.call("Runtime.evaluate", {"expression": expr, "returnByValue": True, "awaitPromise": True},
                            session=session)
            if "exceptionDetails" in got:
                raise RuntimeError(f"{expr!r} threw: {got['exceptionDetails']}")
            values.append((got.get("result") or {}).get("value"))
        pipe.drain(0.2)
    finally:
        pipe.close()
    return values, [t for t in (_message_text(e) for e in pipe.events) if t is not None]


def console_problems(messages: list[str]) -> list[str]:
    """The messages of :func:`console_messages` at level warning or error."""
    return [m for m in messages if m.startswith(("warning:", "error:"))]
