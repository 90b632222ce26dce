"""Keep storage credentials out of messages, reprs and pickles.

A survey root on object storage is opened with credentials from the
environment (``AWS_ACCESS_KEY_ID``, ...) or from ``storage_options``.  The
functions here find those secrets and replace them by ``***`` in any text
that may reach a log, an error or a record.

This module never imports Prefect.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["SECRET_ENV", "env_secrets", "redact", "scrub", "secret_values", "url_has_password", "without_secrets"]

#: Environment variables whose values are credentials, scrubbed from every message.
SECRET_ENV: tuple[str, ...] = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_SAS_TOKEN",
)
# A storage option whose name contains one of these holds a credential.
_SECRET_WORDS = ("key", "secret", "token", "password", "passwd", "credential", "sas", "connection_string")
# Shorter values are not scrubbed: they would blank out ordinary words.
_MIN_SECRET_LEN = 4
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@")


def _is_secret_name(name: object) -> bool:
    return any(w in str(name).lower() for w in _SECRET_WORDS)


def secret_values(options: Mapping[str, Any], under_secret: bool = False) -> set[str]:
    """String values of every option whose name says it is a credential.

    Parameters
    ----------
    options : mapping
        fsspec ``storage_options``; nested mappings (``client_kwargs``) are searched too.
    under_secret : bool
        Treat every value as secret (the mapping sits under a credential-named key).

    Returns
    -------
    set of str
        The secret values at least four characters long.
    """
    found: set[str] = set()
    for name, value in options.items():
        secret = under_secret or _is_secret_name(name)
        if isinstance(value, Mapping):
            found |= secret_values(value, secret)
        elif secret and isinstance(value, str) and len(value) >= _MIN_SECRET_LEN:
            found.add(value)
    return found


def without_secrets(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options with every credential-named entry left out (nested mappings too).

    Parameters
    ----------
    options : mapping
        fsspec ``storage_options``.

    Returns
    -------
    dict
        A copy that may travel to another process or into a record.
    """
    return {
        name: without_secrets(value) if isinstance(value, Mapping) else value
        for name, value in options.items()
        if not _is_secret_name(name)
    }


def env_secrets() -> set[str]:
    """The current values of the credential variables of :data:`SECRET_ENV` that are set.

    Returns
    -------
    set of str
    """
    return {v for name in SECRET_ENV if len(v := os.environ.get(name, "")) >= _MIN_SECRET_LEN}


def url_has_password(url: str) -> bool:
    """Whether a URL carries ``user:password@`` (a password may itself hold ``/``).

    Parameters
    ----------
    url : str

    Returns
    -------
    bool
    """
    rest = url.split("://", 1)[1] if "://" in url else url
    authority = rest.split("/", 1)[0]
    if "@" in authority:
        return ":" in authority.rsplit("@", 1)[0]
    # 's3://KEY:SECR/ET@bucket': the '/' of the secret ends the authority early.
    return ":" in authority and "@" in rest


def redact(url: str) -> str:
    """``url`` with any ``user:password@`` replaced by ``***@``.

    Parameters
    ----------
    url : str

    Returns
    -------
    str
    """
    return _USERINFO.sub(r"\1***@", url)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value and URL user-info replaced by ``***``.

    Parameters
    ----------
    text : str
        A message that may quote credentials (e.g. a backend's error).
    secrets : iterable of str
        The values to hide; longer ones are replaced first.

    Returns
    -------
    str
    """
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return redact(text)
