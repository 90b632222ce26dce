"""A loopback S3 stand-in: moto's server mode on 127.0.0.1.

It is moto's own WSGI application (what ``moto.server.ThreadedMotoServer``
serves) on a werkzeug server bound to ``127.0.0.1`` on a free port, with two
changes:

- requests that change state (PUT, POST, DELETE) are applied one at a time.
  AWS S3 applies a conditional write (``If-None-Match: *``, ``If-Match``)
  atomically.  moto (5.2.5) checks the condition and then stores the object
  in two steps with no lock between them, so under a threaded server two
  racing conditional PUTs could in principle both pass the check (not seen
  in 300 four-way races here, but nothing prevents it).  Serialising writes
  gives the stand-in the guarantee the real service documents, which is
  what the lease tests rely on;
- only one ``Server`` header is sent (see ``_one_write_at_a_time``);
- the request log is silent.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from typing import Any, Self

import boto3
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

_WRITES = frozenset({"PUT", "POST", "DELETE"})

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _QuietHandler(MotoRequestHandler):
    def log(self, type: str, message: str, *args: Any) -> None:
        pass


def _one_write_at_a_time(app: WSGIApp, lock: threading.Lock) -> WSGIApp:
    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def one_server_header(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            # moto names itself in 'Server' and werkzeug adds its own: strict HTTP parsers
            # (aiohttp's pure-Python one, used under `python -X dev`) refuse two.
            return start_response(status, [(k, v) for k, v in headers if k.lower() != "server"], *exc_info)

        if environ.get("REQUEST_METHOD") in _WRITES:
            with lock:
                return list(app(environ, one_server_header))
        return app(environ, one_server_header)

    return wrapped


class S3StandIn:
    """moto's S3 on ``http://127.0.0.1:<free port>``, started and stopped by the tests.

    Attributes
    ----------
    url : str
        The endpoint URL, ``http://127.0.0.1:<port>``.
    """

    def __init__(self) -> None:
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def start(self) -> Self:
        app = _one_write_at_a_time(DomainDispatcherApplication(create_backend_app), threading.Lock())
        self._server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="s3-stand-in", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def create_bucket(self, name: str) -> None:
        """Create a bucket (with the fake credentials of the environment)."""
        client = boto3.client("s3", endpoint_url=self.url, region_name="us-east-1")
        try:
            client.create_bucket(Bucket=name)
        finally:
            client.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def aws_loopback_env(mp: Any, secret: str = "testing-secret") -> None:
    """Fake AWS credentials and nothing that could reach AWS: no profile, metadata service or proxy.

    ``mp`` is a ``pytest.MonkeyPatch``; set ``AWS_ENDPOINT_URL`` to the
    stand-in's ``url`` once it runs.
    """
    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_ENDPOINT_URL_S3",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
    ):
        mp.delenv(name, raising=False)
    mp.setenv("AWS_ACCESS_KEY_ID", "testing-key-id")
    mp.setenv("AWS_SECRET_ACCESS_KEY", secret)
    mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
    mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
    mp.setenv("AWS_CONFIG_FILE", os.devnull)
    mp.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    mp.setenv("NO_PROXY", "127.0.0.1,localhost")
