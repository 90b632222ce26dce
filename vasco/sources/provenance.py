"""What a tile asked of the outside world, and with which tools.

A step that asks a service (or reads a local catalogue file) puts one
:func:`query_entry` per query in its step info under ``queries``: the
service, its base URL (or the file), the tables asked, the query time (UTC,
ISO 8601) and the rows received.  :func:`tile_provenance` gathers the entries
of the steps a tile used into the ``provenance`` block of its ``tile.json``,
marking each ``cached`` when its query was made before this run of the tile
began (the step's recorded answer was reused) and ``fresh`` otherwise, with
the versions of the external tools.  :func:`summarize_provenance` sums the
blocks of a survey's tiles for ``summary.json``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["utc_now", "public_url", "query_entry", "tile_provenance", "summarize_provenance"]


def utc_now() -> str:
    """The current time, UTC, ISO 8601 with milliseconds and a ``Z`` (sorts as text)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def public_url(url: str) -> str:
    """``url`` without user, password, query or fragment (never write credentials); a path as it is."""
    url = str(url)
    if "://" not in url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def query_entry(
    service: str,
    url: str,
    tables: Sequence[str],
    query_time: str,
    rows: int | None,
    requests: int | None = None,
) -> dict[str, Any]:
    """One query as a step records it.

    Parameters
    ----------
    service : str
        ``dss``, ``vizier``, ``xmatch``, ``skybot``, ``supercosmos`` or ``local``.
    url : str
        The service's base URL (the one actually used), or the local file;
        written without user, password, query or fragment (:func:`public_url`).
    tables : sequence of str
        Tables (or survey, or list) asked.
    query_time : str
        When the query began (:func:`utc_now`).
    rows : int or None
        Rows received (None for an image).
    requests : int, optional
        HTTP requests it took, when known (split cones, XMatch jobs).
    """
    entry: dict[str, Any] = {
        "service": str(service),
        "url": public_url(url),
        "tables": [str(t) for t in tables],
        "query_time": str(query_time),
        "rows": None if rows is None else int(rows),
    }
    if requests is not None:
        entry["requests"] = int(requests)
    return entry


def tile_provenance(
    step_infos: Iterable[Mapping[str, Any] | None],
    run_started: str,
    tools: Mapping[str, str | None],
) -> dict[str, Any]:
    """The ``provenance`` block of a tile.json.

    Parameters
    ----------
    step_infos : iterable of mapping or None
        The ``info`` of each step the tile used this run (None skipped).
    run_started : str
        When this run of the tile began (:func:`utc_now`): a query made
        before it is ``cached`` (its step's recorded answer was reused).
    tools : mapping of str to str or None
        External tool versions (None: not found).

    Returns
    -------
    dict
        ``queries`` (each entry with ``cached``), ``services`` (sorted names)
        and ``tools``.
    """
    queries = []
    for info in step_infos:
        for q in (info or {}).get("queries", []) or []:
            queries.append({**q, "cached": str(q.get("query_time", "")) < run_started})
    return {
        "queries": queries,
        "services": sorted({str(q["service"]) for q in queries}),
        "tools": dict(tools),
    }


def summarize_provenance(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Sum the tiles' ``provenance`` blocks for ``summary.json``.

    Returns
    -------
    dict
        ``services``: per service, its ``urls`` and ``tables`` (sorted),
        ``queries`` (count), ``requests`` (sum where known), ``rows``,
        ``cached`` and ``fresh`` counts, ``first_query`` and ``last_query``
        (UTC ISO); ``tools``: every version seen per tool (sorted);
        ``tiles``: how many tiles had a provenance block.
    """
    services: dict[str, dict[str, Any]] = {}
    tools: dict[str, set[str]] = {}
    tiles = 0
    for rec in records:
        prov = rec.get("provenance")
        if not isinstance(prov, Mapping):
            continue
        tiles += 1
        for tool, version in (prov.get("tools") or {}).items():
            tools.setdefault(str(tool), set())
            if version is not None:
                tools[str(tool)].add(str(version))
        for q in prov.get("queries") or []:
            s = services.setdefault(
                str(q["service"]),
                {
                    "urls": set(),
                    "tables": set(),
                    "queries": 0,
                    "requests": 0,
                    "rows": 0,
                    "cached": 0,
                    "fresh": 0,
                    "first_query": None,
                    "last_query": None,
                },
            )
            s["urls"].add(str(q.get("url")))
            s["tables"].update(str(t) for t in q.get("tables") or [])
            s["queries"] += 1
            s["requests"] += int(q.get("requests") or 1)
            s["rows"] += int(q.get("rows") or 0)
            s["cached" if q.get("cached") else "fresh"] += 1
            t = str(q.get("query_time"))
            s["first_query"] = t if s["first_query"] is None else min(s["first_query"], t)
            s["last_query"] = t if s["last_query"] is None else max(s["last_query"], t)
    return {
        "tiles": tiles,
        "services": {
            name: {**s, "urls": sorted(s["urls"]), "tables": sorted(s["tables"])}
            for name, s in sorted(services.items())
        },
        "tools": {tool: sorted(v) for tool, v in sorted(tools.items())},
    }
