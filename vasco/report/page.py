"""The survey report page, ``DIR/report/index.html``.

One static HTML file that opens from disk: the survey summary (tiles,
detections, candidates, injection scores on a synthetic sky, failure
reasons, the tiles whose astrometry is not trusted), the funnel, the QC
plots, the coverage, a link to the candidate gallery, the plate dates
(tiles whose header and plate-table dates disagree, and the per-plate
verdicts of ``vasco epochs`` when ``DIR/epochs.csv`` exists) and a table of
the tiles.  CSS and JavaScript are inline, nothing is
fetched from the network, and every text taken from the survey is
HTML-escaped.  The tiles table is sortable and filterable by status in the
browser; at most :data:`MAX_TILE_ROWS` rows are written (failed and rejected
tiles and tiles with candidates first), the rest are in the tiles'
``tile.json`` records.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from vasco.io import write_text_atomic

__all__ = ["MAX_FAILED_IDS", "MAX_TILE_ROWS", "index_html", "write_index"]

#: Rows of the tiles table written into the page.
MAX_TILE_ROWS = 2000

#: Tile ids listed per failure reason.
MAX_FAILED_IDS = 25

_TILE_COUNTS = (
    ("planned", "planned"),
    ("processed", "processed"),
    ("rejected", "rejected"),
    ("failed", "failed"),
    ("not_run", "not run"),
)


def _e(value: Any) -> str:
    """HTML-escaped text of a value ("" for None)."""
    return "" if value is None else html.escape(str(value), quote=True)


def _href(rel: str) -> str:
    """A relative path as an escaped URL attribute value (percent-encoded, so it stays relative)."""
    return html.escape(quote(str(rel).replace("\\", "/"), safe="/"), quote=True)


def _int(value: Any) -> str:
    """An integer with thousands separators; the value as text when it is not one."""
    if isinstance(value, bool) or value is None:
        return _e(value)
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return _e(value)


def _float(value: Any, digits: int) -> str:
    """A float to ``digits`` decimals; an em dash for missing/NaN."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return "\u2014"
    return f"{f:.{digits}f}" if math.isfinite(f) else "\u2014"


def _pct(value: Any) -> str:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return "\u2014"
    return f"{100.0 * f:.1f} %" if math.isfinite(f) else "\u2014"


def _figure(rel: str, caption: str) -> str:
    return (
        f'<figure><a href="{_href(rel)}"><img src="{_href(rel)}" alt="{_e(caption)}" loading="lazy"></a>'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _kv_table(rows: Sequence[tuple[str, str]], cls: str = "kv") -> str:
    """A two-column table from (escaped name, formatted HTML value) pairs."""
    body = "".join(f'<tr><th scope="row">{k}</th><td>{v}</td></tr>' for k, v in rows)
    return f'<table class="{cls}"><tbody>{body}</tbody></table>'


def _header(folder: str, created: str, vasco_version: str, config_hash: str) -> str:
    return (
        f"<header><h1>VASCO survey report: {_e(folder)}</h1>"
        f'<p class="meta">Created {_e(created)} \u00b7 VASCO {_e(vasco_version)} \u00b7 '
        f"configuration <code>{_e(config_hash)}</code></p>"
        '<nav><a href="#summary">Summary</a> <a href="#funnel">Funnel</a> <a href="#plots">QC plots</a> '
        '<a href="#coverage">Coverage</a> <a href="#candidates">Candidates</a> <a href="#tiles">Tiles</a></nav>'
        "</header>"
    )


def _injection(inj: Mapping[str, Any]) -> str:
    """The synthetic sky's injection scores: rates first, then counts and breakdowns."""
    rows = []
    rates = [k for k in inj if k.startswith(("completeness", "purity"))]
    for k in rates:
        rows.append((_e(k.replace("_", " ")), _pct(inj[k])))
    for k, v in inj.items():
        if k in rates:
            continue
        if isinstance(v, Mapping):
            text = ", ".join(f"{_e(a)} {_int(b)}" for a, b in v.items()) or "none"
        else:
            text = _int(v) if isinstance(v, int) else _e(v)
        rows.append((_e(k.replace("_", " ")), text))
    return "<h3>Injected sources (synthetic sky)</h3>" + _kv_table(rows)


def _failures(failures: Mapping[str, Any], failed_tiles: Mapping[str, Any]) -> str:
    """Rejected and failed tiles by reason token."""
    if not failures and not failed_tiles:
        return "<h3>Failures</h3><p>No tile was rejected or failed.</p>"
    reasons = list(dict.fromkeys([*failures.keys(), *failed_tiles.keys()]))
    body = []
    for reason in reasons:
        ids = [str(t) for t in (failed_tiles.get(reason) or [])]
        shown = ", ".join(_e(t) for t in ids[:MAX_FAILED_IDS])
        if len(ids) > MAX_FAILED_IDS:
            shown += f" \u2026 and {len(ids) - MAX_FAILED_IDS:,} more"
        count = failures.get(reason, len(ids))
        token = "(no reason)" if reason in (None, "None", "null") else reason
        body.append(
            f'<tr><td><code>{_e(token)}</code></td><td class="num">{_int(count)}</td><td class="ids">{shown}</td></tr>'
        )
    return (
        '<h3>Failures</h3><table class="grid"><thead><tr><th>reason</th><th>tiles</th><th>tile ids</th>'
        f"</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _untrusted(trust: Any) -> str:
    """Processed tiles whose astrometry is not trusted, with their reasons (summary.json ``astrometry_trust``)."""
    if not isinstance(trust, Mapping):
        return ""
    tiles = trust.get("untrusted_tiles") or {}
    counts = (
        f"{_int(trust.get('tiles_untrusted', len(tiles)))} tile(s), "
        f"{_int(trust.get('candidates_untrusted', 0))} candidate(s) on them"
    )
    head = (
        '<h3 id="untrusted">Untrusted astrometry</h3><p>Tiles whose positions cannot support a 5" '
        '"no counterpart" claim (their candidates carry <code>astrometry_trusted</code> = false): '
    )
    if not tiles:
        return head + "none.</p>"
    rows = "".join(f"<tr><td>{_e(tid)}</td><td>{_e(why)}</td></tr>" for tid, why in list(tiles.items())[:MAX_TILE_ROWS])
    more = ""
    if len(tiles) > MAX_TILE_ROWS:
        more = f'<p class="note">{len(tiles) - MAX_TILE_ROWS:,} more in summary.json.</p>'
    return (
        f'{head}{counts}.</p><table class="grid" id="untrusted-tiles"><thead><tr><th>tile</th>'
        f"<th>reason</th></tr></thead><tbody>{rows}</tbody></table>{more}"
    )


def _summary(summary: Mapping[str, Any]) -> str:
    tiles = summary.get("tiles") or {}
    rows = [(f"tiles {label}", _int(tiles.get(key, 0))) for key, label in _TILE_COUNTS]
    rows += [("detections", _int(summary.get("detections", 0))), ("candidates", _int(summary.get("candidates", 0)))]
    out = [
        '<section id="summary"><h2>Summary</h2><div class="cols">',
        "<div><h3>Survey</h3>" + _kv_table(rows, "kv summary") + "</div>",
    ]
    if summary.get("injection"):
        out.append("<div>" + _injection(summary["injection"]) + "</div>")
    astro = summary.get("astrometry")
    if isinstance(astro, Mapping):
        arows = [
            (
                _e(k.replace("_", " ")),
                _float(v, 3)
                if isinstance(v, float)
                else (", ".join(f"{_e(a)} {_int(b)}" for a, b in v.items()) if isinstance(v, Mapping) else _e(v)),
            )
            for k, v in astro.items()
        ]
        out.append("<div><h3>Astrometry</h3>" + _kv_table(arows) + "</div>")
    out.append("</div>")
    out.append(_failures(summary.get("failures") or {}, summary.get("failed_tiles") or {}))
    out.append(_untrusted(summary.get("astrometry_trust")))
    out.append("</section>")
    return "".join(out)


def _funnel(funnel: Mapping[str, Any], plots: Mapping[str, str]) -> str:
    """The funnel table (count and fraction kept vs the previous stage) and the funnel plot(s)."""
    out = ['<section id="funnel"><h2>Funnel</h2>']
    if funnel:
        body, prev = [], None
        for stage, n in funnel.items():
            try:
                count = int(n)
            except (TypeError, ValueError):
                count = None
            kept = _pct(count / prev) if (count is not None and prev) else "\u2014"
            body.append(f'<tr><td>{_e(stage)}</td><td class="num">{_int(n)}</td><td class="num">{kept}</td></tr>')
            prev = count
        out.append(
            '<table class="grid funnel"><thead><tr><th>stage</th><th>count</th>'
            f"<th>kept vs previous</th></tr></thead><tbody>{''.join(body)}</tbody></table>"
        )
    else:
        out.append("<p>No processed tile yet: no funnel.</p>")
    out += [_figure(rel, cap) for cap, rel in plots.items() if "funnel" in cap.lower()]
    out.append("</section>")
    return "".join(out)


def _plots(plots: Mapping[str, str]) -> str:
    figs = [_figure(rel, cap) for cap, rel in plots.items() if "funnel" not in cap.lower()]
    inner = "".join(figs) if figs else "<p>No QC plots.</p>"
    return f'<section id="plots"><h2>QC plots</h2><div class="figs">{inner}</div></section>'


def _coverage(coverage: Mapping[str, Any]) -> str:
    rows = []
    if coverage.get("tiles") is not None:
        rows.append(("tiles covered", _int(coverage["tiles"])))
    if coverage.get("area_deg2") is not None:
        rows.append(("area", f"{_float(coverage['area_deg2'], 3)} deg\u00b2"))
    if coverage.get("moc"):
        moc = coverage["moc"]
        rows.append(("MOC", f'<a href="{_href(moc)}" download>{_e(Path(str(moc)).name)}</a> (IVOA MOC, FITS)'))
    out = ['<section id="coverage"><h2>Coverage</h2>']
    out.append(_kv_table(rows) if rows else "<p>No coverage map.</p>")
    if coverage.get("sky"):
        out.append(_figure(coverage["sky"], "Sky coverage of the processed tiles and the candidates (Mollweide)"))
    out.append("</section>")
    return "".join(out)


def _gallery(gallery: str | None, n: Any) -> str:
    if gallery:
        body = (
            f'<p><a class="big" href="{_href(gallery)}">Open the candidate gallery</a> '
            f"({_int(n)} candidates: stamps, measurements, catalogue links).</p>"
        )
    else:
        body = "<p>No gallery was written.</p>"
    return f'<section id="candidates"><h2>Candidates</h2>{body}</section>'


_EPOCH_COLUMNS = (
    ("region", "plate"),
    ("label", "label"),
    ("n_tiles", "tiles"),
    ("date_obs_header", "header date"),
    ("date_obs_table", "plate-table date"),
    ("date_conflict_hours", "difference (h)"),
    ("candidates", "hits / predicted per candidate"),
    ("verdict", "verdict"),
    ("date_obs", "date chosen"),
)


def _epochs(epochs: Sequence[Mapping[str, Any]] | None, conflicts: int | None) -> str:
    """Plate dates: how many tiles' dates disagree, and the table of ``vasco epochs`` (``epochs.csv``)."""
    if epochs is None and not conflicts:
        return ""
    out = ['<section id="epochs"><h2>Plate dates</h2>']
    if conflicts is not None:
        out.append(
            "<p>Processed tiles whose cutout-header date differs from the plate table's by more than "
            f"<code>plates.conflict_hours</code>: {_int(conflicts)} (<code>plate.date_conflict</code> in "
            "their <code>tile.json</code>).</p>"
        )
    if epochs is None:
        out.append(
            "<p>No <code>epochs.csv</code>: run <code>vasco epochs DIR</code> to let the asteroids on "
            "each plate decide its date.</p>"
        )
    else:
        out.append(
            "<p>From <code>epochs.csv</code> (<code>vasco epochs</code>): for each plate, how many of the "
            "minor planets SkyBoT predicts on its processed tiles at each candidate date land on a "
            "detection; the date with clearly most hits is chosen.</p>"
        )
        head = "".join(f"<th>{_e(label)}</th>" for _, label in _EPOCH_COLUMNS)
        body = []
        for row in epochs:
            cells = []
            for key, _ in _EPOCH_COLUMNS:
                v = row.get(key)
                missing = v is None or (isinstance(v, float) and math.isnan(v))
                text = chr(0x2014) if missing else (_float(v, 2) if isinstance(v, float) else _e(v))
                cells.append(f"<td>{text}</td>")
            body.append(f'<tr data-verdict="{_e(row.get("verdict"))}">{"".join(cells)}</tr>')
        out.append(
            f'<table class="grid" id="epochs-table"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>"
        )
    out.append("</section>\n")
    return "".join(out)


def _tile_priority(t: Mapping[str, Any]) -> tuple[int, int, str]:
    status = str(t.get("status"))
    try:
        cands = int(t.get("candidates") or 0)
    except (TypeError, ValueError):
        cands = 0
    rank = 0 if status == "failed" else 1 if status == "rejected" else 2 if cands > 0 else 3
    return rank, -cands, str(t.get("tile_id"))


def _plate_text(plate: Any) -> str:
    if isinstance(plate, Mapping):
        label, region = plate.get("label"), plate.get("region")
        return f"{label or ''}{f' ({region})' if region else ''}"
    return "" if plate is None else str(plate)


def _tile_row(t: Mapping[str, Any]) -> str:
    links = []
    if t.get("qc"):
        links.append(f'<a href="{_href(t["qc"])}">QC</a>')
    if t.get("astrometry"):
        links.append(f'<a href="{_href(t["astrometry"])}">astrometry</a>')
    epoch = _float(t.get("epoch"), 2)

    def num(key: str) -> str:
        v = t.get(key)
        sort = _e(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else ""
        return f'<td class="num" data-v="{sort}">{_int(v) if v is not None else chr(0x2014)}</td>'

    return (
        f'<tr data-status="{_e(t.get("status"))}"><td>{_e(t.get("tile_id"))}</td>'
        f"<td>{_e(t.get('status'))}</td><td>{_e(t.get('reason') or '')}</td>"
        f"<td>{_e(_plate_text(t.get('plate')))}</td>"
        f'<td class="num" data-v="{"" if epoch == chr(0x2014) else epoch}">{epoch}</td>'
        f"{num('detections')}{num('candidates')}<td>{' '.join(links)}</td></tr>"
    )


def _tiles(tiles: Sequence[Mapping[str, Any]]) -> str:
    ordered = sorted(tiles, key=_tile_priority)
    shown = ordered[:MAX_TILE_ROWS]
    statuses: dict[str, int] = {}
    for t in tiles:
        statuses[str(t.get("status"))] = statuses.get(str(t.get("status")), 0) + 1
    options = '<option value="">all</option>' + "".join(
        f'<option value="{_e(s)}">{_e(s)} ({n:,})</option>' for s, n in sorted(statuses.items())
    )
    note = ""
    if len(tiles) > len(shown):
        note = (
            f'<p class="note" id="tiles-cap">Showing {len(shown):,} of {len(tiles):,} tiles: failed and '
            "rejected tiles and tiles with candidates first. Every tile's record is "
            "<code>tiles/&lt;tile&gt;/tile.json</code> in the survey folder.</p>"
        )
    heads = [
        ("tile", "text"),
        ("status", "text"),
        ("reason", "text"),
        ("plate", "text"),
        ("epoch", "num"),
        ("detections", "num"),
        ("candidates", "num"),
        ("plots", "text"),
    ]
    th = "".join(
        f'<th data-kind="{k}"><button type="button" data-col="{i}">{_e(h)}</button></th>'
        for i, (h, k) in enumerate(heads)
    )
    rows = "".join(_tile_row(t) for t in shown)
    empty = "" if tiles else "<p>No tiles.</p>"
    return (
        f'<section id="tiles"><h2>Tiles</h2>{note}'
        '<form class="controls" id="tile-controls" autocomplete="off">'
        f'<label for="tile-status">Status <select id="tile-status" name="tile-status">{options}</select></label> '
        '<label for="tile-text">Tile / plate <input type="search" id="tile-text" name="tile-text"></label> '
        '<output id="tile-shown" for="tile-status tile-text"></output></form>'
        f'<table class="grid" id="tile-table"><thead><tr>{th}</tr></thead><tbody>{rows}</tbody></table>{empty}'
        "</section>"
    )


_CSS = """
* { box-sizing: border-box; }
body { margin:0 auto; max-width:1200px; padding:0 20px 40px; font:14px/1.45 system-ui, -apple-system, "Segoe UI",
       Roboto, sans-serif; color:#1d232a; background:#fff; }
header { padding:16px 0 8px; border-bottom:1px solid #d7dde3; }
h1 { font-size:22px; margin:0 0 4px; } h2 { font-size:18px; margin:28px 0 8px; border-bottom:1px solid #e4e8ec; }
h3 { font-size:15px; margin:16px 0 6px; }
.meta { color:#5b6670; margin:0 0 6px; } nav a { margin-right:12px; }
table { border-collapse:collapse; } th, td { padding:2px 10px 2px 0; text-align:left; vertical-align:top; }
table.kv th { font-weight:normal; color:#5b6670; }
table.grid th, table.grid td { border-bottom:1px solid #eef1f4; padding:3px 12px 3px 4px; }
table.grid thead th { border-bottom:2px solid #d7dde3; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
td.ids { font-size:12px; max-width:60em; }
th button { all:unset; cursor:pointer; font-weight:600; }
th button::after { content:" \\2195"; color:#aab4be; }
figure { margin:12px 0; } figure img { max-width:100%; height:auto; border:1px solid #e4e8ec; }
figcaption { color:#5b6670; font-size:13px; }
.figs { display:grid; grid-template-columns:repeat(auto-fill, minmax(520px, 1fr)); gap:8px 20px; }
.note { background:#fff8e1; padding:6px 10px; border-left:3px solid #e0b400; }
.controls { margin:8px 0; display:flex; gap:16px; align-items:center; flex-wrap:wrap; }
.big { font-size:16px; font-weight:600; }
.cols { display:flex; flex-wrap:wrap; gap:8px 48px; align-items:flex-start; }
tr[hidden] { display:none; }
"""

_JS = r"""
(function () {
  "use strict";
  const table = document.getElementById("tile-table");
  const body = table.tBodies[0];
  const rows = Array.prototype.slice.call(body.rows);
  const status = document.getElementById("tile-status");
  const text = document.getElementById("tile-text");
  const shown = document.getElementById("tile-shown");
  let sortCol = -1, sortDesc = false;

  function key(row, col, kind) {
    const cell = row.cells[col];
    if (kind === "num") {
      const v = cell.dataset.v;
      return v === "" || v === undefined ? null : Number(v);
    }
    return cell.textContent;
  }
  function filter() {
    const s = status.value, t = text.value.trim().toLowerCase();
    let n = 0;
    rows.forEach(function (r) {
      const ok = (s === "" || r.dataset.status === s) &&
        (t === "" || (r.cells[0].textContent + " " + r.cells[3].textContent).toLowerCase().indexOf(t) >= 0);
      r.hidden = !ok;
      if (ok) n += 1;
    });
    shown.textContent = n + " of " + rows.length + " rows shown";
  }
  function sortBy(col, kind) {
    sortDesc = (col === sortCol) ? !sortDesc : false;
    sortCol = col;
    const keyed = rows.map(function (r, i) { return { r: r, k: key(r, col, kind), i: i }; });
    keyed.sort(function (a, b) {
      if (a.k === b.k) return a.i - b.i;
      if (a.k === null) return 1;
      if (b.k === null) return -1;
      const c = kind === "num" ? a.k - b.k : String(a.k).localeCompare(String(b.k));
      return sortDesc ? -c : c;
    });
    const frag = document.createDocumentFragment();
    keyed.forEach(function (x) { frag.appendChild(x.r); });
    body.appendChild(frag);
  }
  table.tHead.addEventListener("click", function (ev) {
    const b = ev.target.closest("button[data-col]");
    if (b) sortBy(Number(b.dataset.col), b.parentElement.dataset.kind);
  });
  status.addEventListener("change", filter);
  text.addEventListener("input", filter);
  document.getElementById("tile-controls").addEventListener("submit", function (ev) { ev.preventDefault(); });
  filter();
  document.body.dataset.ready = "1";
})();
"""


def index_html(
    *,
    folder: str,
    summary: Mapping[str, Any],
    plots: Mapping[str, str],
    tiles: Sequence[Mapping[str, Any]],
    coverage: Mapping[str, Any],
    gallery: str | None,
    config_hash: str,
    vasco_version: str,
    created: str,
    epochs: Sequence[Mapping[str, Any]] | None = None,
    date_conflicts: int | None = None,
) -> str:
    """The report page as text (see :func:`write_index`)."""
    title = f"VASCO survey report: {folder}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n"
        '<link rel="icon" href="data:,">\n'
        f"<style>{_CSS}</style>\n</head>\n<body>\n"
        f"{_header(folder, created, vasco_version, config_hash)}\n"
        f"{_summary(summary)}\n"
        f"{_funnel(summary.get('funnel') or {}, plots)}\n"
        f"{_plots(plots)}\n"
        f"{_coverage(coverage)}\n"
        f"{_gallery(gallery, summary.get('candidates', 0))}\n"
        f"{_epochs(epochs, date_conflicts)}"
        f"{_tiles(tiles)}\n"
        f"<script>{_JS}</script>\n</body>\n</html>\n"
    )


def write_index(
    path: Path,
    *,
    summary: dict,
    plots: dict[str, str],
    tiles: list[dict],
    coverage: dict,
    gallery: str | None,
    config_hash: str,
    vasco_version: str,
    created: str,
    epochs: list[dict] | None = None,
    date_conflicts: int | None = None,
) -> Path:
    """Write the survey report page (atomically) and return its path.

    Parameters
    ----------
    path : pathlib.Path
        ``DIR/report/index.html``; the survey folder's name (``DIR``) is shown
        in the title.
    summary : dict
        The survey's ``summary.json``: ``tiles`` {planned, processed,
        rejected, failed, not_run}, ``detections``, ``candidates``,
        ``funnel`` {stage: count} (in order), ``failures`` {reason: count},
        ``failed_tiles`` {reason: [tile id]}, optionally ``injection``,
        ``astrometry`` and ``astrometry_trust`` (its ``untrusted_tiles``
        {tile id: reason} are listed).
    plots : dict of str to str
        Caption -> PNG path relative to the page, shown in order as figures;
        captions containing "funnel" are shown in the funnel section.
    tiles : list of dict
        One per tile: ``tile_id``, ``status``, ``reason``, ``plate`` (text or
        {label, region}), ``epoch``, ``detections``, ``candidates``, ``qc``
        and ``astrometry`` (relative PNG paths or None).  At most
        :data:`MAX_TILE_ROWS` are written, failed, rejected and tiles with
        candidates first.
    coverage : dict
        ``moc`` (relative path of the MOC FITS), ``sky`` (relative path of the
        sky map PNG), ``area_deg2``, ``tiles``; any may be missing.
    gallery : str or None
        Relative path of the gallery page, or None.
    config_hash, vasco_version, created : str
        Shown in the header (``created`` is the only time on the page).
    epochs : list of dict, optional
        The rows of ``DIR/epochs.csv`` (``vasco epochs``), shown as the
        plate-dates table; None when there is none.
    date_conflicts : int, optional
        How many processed tiles have ``plate.date_conflict``.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    if not isinstance(summary, Mapping):
        raise TypeError(f"report summary must be a mapping (summary.json), not {type(summary).__name__}")
    path = Path(path)
    folder = path.resolve().parent.parent.name
    text = index_html(
        folder=folder,
        summary=summary,
        plots=plots,
        tiles=tiles,
        coverage=coverage,
        gallery=gallery,
        config_hash=config_hash,
        vasco_version=vasco_version,
        created=created,
        epochs=epochs,
        date_conflicts=date_conflicts,
    )
    return write_text_atomic(path, text)
