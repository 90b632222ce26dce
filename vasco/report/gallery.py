"""The candidate gallery: one static HTML page with a card per survey candidate.

The page opens from disk (``file://``) with no server and loads nothing from
the network: its CSS and JavaScript are inline, and the candidates are
embedded as JSON in a ``<script type="application/json" id="vasco-data">``
block from which the script builds the cards (with ``textContent``, never
``innerHTML`` from data).  The reader sorts and filters the cards in the
browser; links to catalogue services open in a new tab.

The script reports its state for automated checks: each card's
``data-stamp`` is ``pending`` until its stamp is known to be ``loaded``,
``error`` (the file could not be read) or ``missing`` (no stamp was cut);
``document.body.dataset.ready`` becomes ``"1"`` once the cards are built and
every *eager* stamp has loaded or failed.  The first :data:`EAGER_STAMPS`
cards load their stamps eagerly, the rest lazily (as they scroll into view);
the URL parameter ``?eager=1`` makes every stamp eager.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import astropy.units as u
import numpy as np
import pandas as pd
from astropy.coordinates import SkyCoord

from vasco.filters.cuts import CUT_ORDER, SPREAD_CUT
from vasco.filters.registry import VETO_ORDER
from vasco.io import write_text_atomic

__all__ = [
    "EAGER_STAMPS",
    "funnel_stage_columns",
    "gallery_html",
    "script_json",
    "service_links",
    "sexagesimal",
    "write_gallery",
]

#: Cards whose stamps load eagerly (about the first two screens); the rest are lazy.
EAGER_STAMPS = 24

#: Search radius of the catalogue links, arcsec.
LINK_RADIUS_ARCSEC = 10.0

#: Field of view of the image-viewer links, degrees.
LINK_FOV_DEG = 0.05

# card datum -> candidates column (all optional but ra, dec)
_NUMERIC = {
    "epoch": "plate_epoch",
    "number": "NUMBER",
    "x": "X_IMAGE",
    "y": "Y_IMAGE",
    "mag": "MAG_AUTO",
    "magerr": "MAGERR_AUTO",
    "snr": "SNR_WIN",
    "fwhm": "FWHM_IMAGE",
    "elong": "ELONGATION",
    "spread": "SPREAD_MODEL",
    "spreaderr": "SPREADERR_MODEL",
    "x_plate": "x_plate",
    "y_plate": "y_plate",
    "edge": "edge_dist_px",
    "centre_mm": "centre_dist_mm",
    "n_meas": "n_measurements",
    "poserr": "pos_err_arcsec",
}
_TEXT = {"tile": "tile_id", "plate": "plate_label", "region": "plate_region", "untrusted": "astrometry_trust_reason"}


def funnel_stage_columns(columns: list[str] | pd.Index) -> list[str]:
    """The pass/fail columns of the funnel present in ``columns``, in funnel order.

    The quality cuts (``cut_<name>`` of :data:`vasco.filters.cuts.CUT_ORDER`),
    the counterpart tests (``no_<catalogue>``, in column order), the
    SPREAD_MODEL cut and the vetoes (``veto_<stage>`` of
    :data:`vasco.filters.registry.VETO_ORDER`; True there means *rejected*).
    """
    cols = [str(c) for c in columns]
    have = set(cols)
    order = [f"cut_{n}" for n in CUT_ORDER]
    order += [c for c in cols if c.startswith("no_") and c != "no_counterpart"]
    order += [f"cut_{SPREAD_CUT}"]
    order += [f"veto_{n}" for n in VETO_ORDER]
    return [c for c in order if c in have]


def _stage_name(column: str) -> str:
    """The funnel stage of a pass/fail column (the summary's funnel key)."""
    for prefix in ("cut_", "veto_"):
        if column.startswith(prefix):
            return column[len(prefix) :]
    return column


def sexagesimal(ra: np.ndarray, dec: np.ndarray) -> tuple[list[str], list[str]]:
    """RA as ``hh:mm:ss.ss`` and Dec as ``±dd:mm:ss.s`` (ICRS, degrees in); "" where not finite."""
    ra = np.asarray(ra, dtype=np.float64)
    dec = np.asarray(dec, dtype=np.float64)
    out_ra = [""] * ra.size
    out_dec = [""] * ra.size
    ok = np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90.0)
    if ok.any():
        c = SkyCoord(ra[ok] * u.deg, dec[ok] * u.deg, frame="icrs")
        ras = np.atleast_1d(c.ra.to_string(unit=u.hourangle, sep=":", precision=2, pad=True))
        decs = np.atleast_1d(c.dec.to_string(unit=u.deg, sep=":", precision=1, pad=True, alwayssign=True))
        for k, i in enumerate(np.flatnonzero(ok)):
            out_ra[i] = str(ras[k])
            out_dec[i] = str(decs[k])
    return out_ra, out_dec


def service_links(ra: float, dec: float) -> list[tuple[str, str]]:
    """Links (label, URL) to catalogue and image services at (ra, dec) in degrees."""
    pos = f"{ra:.6f} {dec:+.6f}"
    radius = f"{LINK_RADIUS_ARCSEC:g}"
    fov = f"{LINK_FOV_DEG:g}"

    def url(base: str, params: list[tuple[str, str]]) -> str:
        return base + "?" + urlencode(params, quote_via=quote)

    return [
        (
            "SIMBAD",
            url(
                "https://simbad.cds.unistra.fr/simbad/sim-coo",
                [
                    ("Coord", pos),
                    ("CooFrame", "ICRS"),
                    ("CooEqui", "2000"),
                    ("Radius", radius),
                    ("Radius.unit", "arcsec"),
                ],
            ),
        ),
        ("VizieR", url("https://vizier.cds.unistra.fr/viz-bin/VizieR", [("-c", pos), ("-c.rs", radius)])),
        (
            "Aladin",
            url(
                "https://aladin.cds.unistra.fr/AladinLite/",
                [("target", pos), ("fov", fov), ("survey", "CDS/P/DSS2/red")],
            ),
        ),
        (
            "ESASky",
            url(
                "https://sky.esa.int/esasky/",
                [("target", pos), ("fov", fov), ("hips", "DSS2 color"), ("cooframe", "J2000"), ("sci", "true")],
            ),
        ),
        (
            "Legacy Surveys",
            url(
                "https://www.legacysurvey.org/viewer",
                [
                    ("ra", f"{ra:.6f}"),
                    ("dec", f"{dec:.6f}"),
                    ("layer", "ls-dr10"),
                    ("zoom", "16"),
                    ("mark", f"{ra:.6f},{dec:.6f}"),
                ],
            ),
        ),
        (
            "Pan-STARRS",
            url(
                "https://ps1images.stsci.edu/cgi-bin/ps1cutouts",
                [("pos", pos), ("filter", "color"), ("filetypes", "stack"), ("size", "240"), ("output_size", "0")],
            ),
        ),
    ]


def script_json(payload: Any) -> str:
    """JSON safe inside a ``<script>`` element: ``<``, ``>`` and ``&`` escaped as ``\\uXXXX``.

    No ``</script>`` or ``<!--`` can then close or confuse the element, and
    ``JSON.parse`` reads the same values back.
    """
    text = json.dumps(payload, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _num(value: Any) -> float | int | None:
    """A finite number for JSON, None for missing/NaN/non-numeric."""
    if value is None or value is pd.NA:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(f):
        return None
    return int(f) if isinstance(value, (int, np.integer)) else f


def _text(value: Any) -> str:
    """A text field: "" for missing values."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _stages(row: dict[str, Any], columns: list[str]) -> tuple[list[str], list[str]]:
    """The funnel stages ``row`` passed and failed (not evaluated = neither), in funnel order.

    ``cut_*`` and ``no_*`` are True when the source passes; ``veto_*`` are
    True when the veto *rejects* it.
    """
    passed: list[str] = []
    failed: list[str] = []
    for col in columns:
        v = row.get(col)
        if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
            continue
        ok = not bool(v) if col.startswith("veto_") else bool(v)
        (passed if ok else failed).append(_stage_name(col))
    return passed, failed


def _card_data(candidates: pd.DataFrame, stamps: list[str | None]) -> list[dict[str, Any]]:
    """The JSON datum of each card."""
    ra = pd.to_numeric(candidates["ra"], errors="coerce").to_numpy(np.float64)
    dec = pd.to_numeric(candidates["dec"], errors="coerce").to_numpy(np.float64)
    hms, dms = sexagesimal(ra, dec)
    stage_cols = funnel_stage_columns(candidates.columns)
    wanted = [c for c in list(_NUMERIC.values()) + list(_TEXT.values()) + stage_cols if c in candidates.columns]
    records = candidates[wanted].to_dict(orient="records")
    cards = []
    for i, rec in enumerate(records):
        d: dict[str, Any] = {"i": i, "ra": _num(ra[i]), "dec": _num(dec[i]), "hms": hms[i], "dms": dms[i]}
        for key, col in _TEXT.items():
            d[key] = _text(rec.get(col))
        for key, col in _NUMERIC.items():
            d[key] = _num(rec.get(col))
        d["passed"], d["failed"] = _stages(rec, stage_cols)
        stamp = stamps[i]
        d["stamp"] = quote(str(stamp).replace("\\", "/"), safe="/") if stamp else None
        d["links"] = service_links(ra[i], dec[i]) if d["ra"] is not None and d["dec"] is not None else []
        cards.append(d)
    return cards


_CSS = """
:root { --fg:#1d232a; --muted:#5b6670; --line:#d7dde3; --bg:#f6f7f9; --card:#fff; --chip:#e7f1e8; --chipfg:#1f5d2b;
        --bad:#f7e3e1; --badfg:#8a1f12; --accent:#1f4f8a; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--fg);
       background:var(--bg); }
header { padding:16px 20px 8px; background:var(--card); border-bottom:1px solid var(--line); }
h1 { font-size:20px; margin:0 0 4px; }
.legend { color:var(--muted); margin:4px 0; max-width:70em; }
form.controls { display:flex; flex-wrap:wrap; gap:8px 16px; align-items:end; padding:10px 20px; background:var(--card);
                border-bottom:1px solid var(--line); position:sticky; top:0; z-index:1; }
form.controls label { display:flex; flex-direction:column; font-size:12px; color:var(--muted); }
form.controls input, form.controls select, form.controls button { font:inherit; padding:3px 6px; }
form.controls input[type=number] { width:6.5em; }
#shown { font-weight:600; margin-left:auto; }
main { padding:16px 20px; }
#cards { display:grid; grid-template-columns:repeat(auto-fill, minmax(400px, 1fr)); gap:14px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:6px; padding:10px; display:grid;
        grid-template-columns:160px 1fr; gap:6px 12px; align-content:start; }
.card[hidden] { display:none; }
#cards.many .card { content-visibility:auto; contain-intrinsic-size:auto 330px; }
.stampbox { width:160px; }
.stampbox img, .nostamp { width:160px; height:160px; display:block; image-rendering:pixelated;
                          border:1px solid var(--line); background:#eef1f5; }
.stampwrap { position:relative; width:160px; height:160px; }
.stampwrap::before, .stampwrap::after { content:""; position:absolute; background:#d62728; }
.stampwrap::before { left:79px; top:52px; width:2px; height:18px; }
.stampwrap::after { left:52px; top:79px; width:18px; height:2px; }
.nostamp { display:flex; align-items:center; justify-content:center; color:var(--muted); font-size:12px; }
.compass { font-size:11px; color:var(--muted); text-align:center; margin-top:2px; }
.pos { font:600 15px/1.3 ui-monospace, "DejaVu Sans Mono", monospace; margin:0; }
.deg { font:12px ui-monospace, "DejaVu Sans Mono", monospace; color:var(--muted); margin:0 0 4px; }
dl.facts { display:grid; grid-template-columns:auto 1fr; gap:1px 8px; margin:0; font-size:12px; }
dl.facts dt { color:var(--muted); }
dl.facts dd { margin:0; font-variant-numeric:tabular-nums; overflow-wrap:anywhere; min-width:0; }
dl.facts.wide { grid-column:1 / -1; grid-template-columns:auto auto auto auto; justify-content:start; }
dl.facts.wide dd { white-space:nowrap; margin-right:6px; }
.info { min-width:0; }
.chips, .links { grid-column:1 / -1; display:flex; flex-wrap:wrap; gap:3px; }
.chip { font-size:10.5px; padding:0 5px; border-radius:8px; background:var(--chip); color:var(--chipfg); }
.chip.fail { background:var(--bad); color:var(--badfg); }
.links a { font-size:12px; color:var(--accent); margin-right:6px; }
.empty { font-size:16px; color:var(--muted); padding:24px 0; }
"""

_JS = r"""
(function () {
  "use strict";
  const payload = JSON.parse(document.getElementById("vasco-data").textContent);
  const rows = payload.candidates;
  const eagerAll = new URLSearchParams(window.location.search).get("eager") === "1";
  const EAGER = payload.eager;
  const grid = document.getElementById("cards");
  if (rows.length > 200) grid.classList.add("many");  // skip rendering off-screen cards of big galleries
  const shown = document.getElementById("shown");
  const form = document.getElementById("controls");
  const cards = [];
  let pending = 0;
  let built = false;

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  function fmt(v, d) {
    return (v === null || v === undefined) ? "\u2014" : Number(v).toFixed(d);
  }
  function pm(v, err, d) {
    return (v === null ? "\u2014" : fmt(v, d)) + (err === null ? "" : " \u00b1 " + fmt(err, d));
  }
  function markReady() {
    if (built && pending === 0) document.body.dataset.ready = "1";
  }
  function fact(dl, name, value) {
    dl.appendChild(el("dt", null, name));
    dl.appendChild(el("dd", null, value));
  }

  function stampBox(r, card, eager) {
    const box = el("div", "stampbox");
    if (!r.stamp) {
      box.appendChild(el("div", "nostamp", "no stamp"));
      card.dataset.stamp = "missing";
    } else {
      const img = document.createElement("img");
      img.width = 160;
      img.height = 160;
      img.alt = "POSS-I stamp of candidate " + (r.number === null ? "" : r.number) + " on tile " + r.tile;
      img.loading = eager ? "eager" : "lazy";
      img.decoding = "async";
      card.dataset.stamp = "pending";
      if (eager) pending += 1;
      const done = function (state) {
        return function () {
          if (card.dataset.stamp === "pending" && eager) { pending -= 1; }
          card.dataset.stamp = state;
          markReady();
        };
      };
      img.addEventListener("load", done("loaded"), { once: true });
      img.addEventListener("error", done("error"), { once: true });
      img.src = r.stamp;
      const wrap = el("div", "stampwrap");
      wrap.appendChild(img);
      box.appendChild(wrap);
    }
    box.appendChild(el("div", "compass", "N \u2191  E \u2190"));
    return box;
  }

  function buildCard(r, k) {
    const card = el("article", "card");
    card.dataset.index = String(r.i);
    card.appendChild(stampBox(r, card, eagerAll || k < EAGER));
    const info = el("div", "info");
    info.appendChild(el("h2", "pos", (r.hms || "\u2014") + " " + (r.dms || "")));
    const sign = (r.dec !== null && r.dec >= 0) ? "+" : "";
    info.appendChild(el("p", "deg", "RA " + fmt(r.ra, 6) + "\u00b0  Dec " + sign + fmt(r.dec, 6) + "\u00b0"));
    const top = el("dl", "facts");
    fact(top, "Tile", r.tile);
    fact(top, "Plate", r.plate + (r.region ? " (" + r.region + ")" : ""));
    fact(top, "Epoch", fmt(r.epoch, 2));
    fact(top, "NUMBER", r.number === null ? "\u2014" : String(r.number));
    fact(top, "Seen on", r.n_meas === null ? "\u2014" : r.n_meas + (r.n_meas === 1 ? " tile" : " tiles"));
    info.appendChild(top);
    card.appendChild(info);
    const dl = el("dl", "facts wide");
    fact(dl, "MAG_AUTO", pm(r.mag, r.magerr, 3));
    fact(dl, "SNR_WIN", fmt(r.snr, 1));
    fact(dl, "SPREAD_MODEL", pm(r.spread, r.spreaderr, 4));
    fact(dl, "Elongation", fmt(r.elong, 2));
    fact(dl, "Plate x, y", fmt(r.x_plate, 1) + ", " + fmt(r.y_plate, 1));
    fact(dl, "FWHM", fmt(r.fwhm, 2) + " px");
    fact(dl, "Tile x, y", fmt(r.x, 1) + ", " + fmt(r.y, 1));
    fact(dl, "Plate edge", fmt(r.edge, 0) + " px");
    fact(dl, "Plate centre", fmt(r.centre_mm, 1) + " mm");
    fact(dl, "Position \u00b1", fmt(r.poserr, 2) + "\u2033");
    card.appendChild(dl);
    const chips = el("div", "chips");
    chips.title = "Funnel stages passed, in order";
    if (r.untrusted) {
      const c = el("span", "chip fail", "\u26a0 astrometry untrusted: " + r.untrusted);
      c.title = "The tile's positions cannot support a 5\u2033 no-counterpart claim (summary.json astrometry_trust)";
      chips.appendChild(c);
    }
    r.passed.forEach(function (s) { chips.appendChild(el("span", "chip", s)); });
    r.failed.forEach(function (s) { chips.appendChild(el("span", "chip fail", "\u2717 " + s)); });
    card.appendChild(chips);
    const links = el("nav", "links");
    r.links.forEach(function (l) {
      const a = el("a", null, l[0]);
      a.href = l[1];
      a.target = "_blank";
      a.rel = "noopener";
      links.appendChild(a);
    });
    card.appendChild(links);
    return card;
  }

  function value(id) {
    const v = document.getElementById(id).value.trim();
    if (v === "") return null;
    const f = Number(v);
    return Number.isFinite(f) ? f : null;
  }
  function within(v, lo, hi) {
    if (lo === null && hi === null) return true;
    if (v === null) return false;
    return (lo === null || v >= lo) && (hi === null || v <= hi);
  }

  function update() {
    const key = document.getElementById("sort").value;
    const desc = document.getElementById("order").dataset.desc === "1";
    const text = document.getElementById("text").value.trim().toLowerCase();
    const magLo = value("mag-min"), magHi = value("mag-max");
    const snrLo = value("snr-min"), snrHi = value("snr-max");
    const edgeLo = value("edge-min");
    const order = cards.slice().sort(function (a, b) {
      const va = a.row[key], vb = b.row[key];
      if (va === vb) return a.row.i - b.row.i;
      if (va === null) return 1;
      if (vb === null) return -1;
      return desc ? vb - va : va - vb;
    });
    let n = 0;
    const frag = document.createDocumentFragment();
    order.forEach(function (c) {
      const r = c.row;
      const hay = (r.tile + " " + r.plate + " " + r.region).toLowerCase();
      const ok = (text === "" || hay.indexOf(text) >= 0) && within(r.mag, magLo, magHi)
        && within(r.snr, snrLo, snrHi) && within(r.edge, edgeLo, null);
      c.card.hidden = !ok;
      if (ok) n += 1;
      frag.appendChild(c.card);
    });
    grid.appendChild(frag);
    shown.textContent = n + " of " + rows.length + " candidates shown";
  }

  rows.forEach(function (r, k) { cards.push({ row: r, card: buildCard(r, k) }); });
  const first = document.createDocumentFragment();
  cards.forEach(function (c) { first.appendChild(c.card); });
  grid.appendChild(first);
  form.addEventListener("input", update);
  form.addEventListener("submit", function (ev) { ev.preventDefault(); });
  document.getElementById("order").addEventListener("click", function () {
    const b = document.getElementById("order");
    const desc = b.dataset.desc !== "1";
    b.dataset.desc = desc ? "1" : "0";
    b.textContent = desc ? "descending \u2193" : "ascending \u2191";
    update();
  });
  update();
  built = true;
  markReady();
})();
"""

_SORT_KEYS = [
    ("i", "catalogue order"),
    ("ra", "RA"),
    ("dec", "Dec"),
    ("mag", "magnitude (MAG_AUTO)"),
    ("snr", "SNR_WIN"),
    ("epoch", "epoch"),
    ("edge", "plate edge distance"),
    ("fwhm", "FWHM"),
]


def _controls() -> str:
    """The sort and filter form."""
    options = "".join(f'<option value="{k}">{html.escape(label)}</option>' for k, label in _SORT_KEYS)
    return (
        '<form class="controls" id="controls" autocomplete="off">'
        f'<label for="sort">Sort by<select id="sort" name="sort">{options}</select></label>'
        '<label for="order">Order<button type="button" id="order" name="order" data-desc="0">'
        "ascending \u2191</button></label>"
        '<label for="text">Tile / plate / region<input type="search" id="text" name="text" '
        'placeholder="e.g. E1398"></label>'
        '<label for="mag-min">mag \u2265<input type="number" step="any" id="mag-min" name="mag-min"></label>'
        '<label for="mag-max">mag \u2264<input type="number" step="any" id="mag-max" name="mag-max"></label>'
        '<label for="snr-min">SNR \u2265<input type="number" step="any" id="snr-min" name="snr-min"></label>'
        '<label for="snr-max">SNR \u2264<input type="number" step="any" id="snr-max" name="snr-max"></label>'
        '<label for="edge-min">plate edge \u2265 (px)<input type="number" step="any" min="0" id="edge-min" '
        'name="edge-min"></label>'
        '<output id="shown" for="sort text mag-min mag-max snr-min snr-max edge-min"></output>'
        "</form>"
    )


def gallery_html(candidates: pd.DataFrame, stamps: list[str | None], *, title: str) -> str:
    """The gallery page as text (see :func:`write_gallery`)."""
    cards = _card_data(candidates, stamps)
    payload = {
        "eager": EAGER_STAMPS,
        "stages": [_stage_name(c) for c in funnel_stage_columns(candidates.columns)],
        "candidates": cards,
    }
    n = len(cards)
    t = html.escape(title)
    count = f"{n} candidate{'s' if n != 1 else ''}"
    empty = (
        ""
        if n
        else (
            '<p class="empty" id="empty">No candidates in this survey: no source passed every stage of the funnel.</p>'
        )
    )
    legend = (
        "Each card is one survey candidate: a source on the POSS-I red plate that passed every stage of the "
        "funnel (green chips, in order). The stamp is a cutout of the plate scan centred on the "
        "detection (the red ticks, north and east of it, point at it), shown as a negative (dark stars on "
        "a light sky, like the plate), north up and east left; "
        "pale blue-grey is beyond the edge of the tile cutout. Epoch is the plate's decimal year; magnitudes are "
        "SExtractor's instrumental MAG_AUTO. The links search catalogue and image services at the position "
        f"({LINK_RADIUS_ARCSEC:g}\u2033 radius); the Aladin link shows the later DSS2 red (POSS-II) plate."
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{t}</title>\n"
        '<link rel="icon" href="data:,">\n'
        f"<style>{_CSS}</style>\n</head>\n<body>\n"
        f'<header><h1>{t}</h1><p class="count">{count}</p><p class="legend">{html.escape(legend)}</p>'
        "<noscript><p>This page needs JavaScript to show the candidates.</p></noscript></header>\n"
        f"{_controls()}\n"
        f'<main><div id="cards"></div>{empty}</main>\n'
        f'<script type="application/json" id="vasco-data">{script_json(payload)}</script>\n'
        f"<script>{_JS}</script>\n</body>\n</html>\n"
    )


def write_gallery(
    candidates: pd.DataFrame,
    stamps: list[str | None],
    path: Path,
    *,
    title: str,
    stamp_prefix: str = "stamps",
) -> Path:
    """Write the candidate gallery page: one card per survey candidate.

    Parameters
    ----------
    candidates : pandas.DataFrame
        The survey candidates (rows of ``candidates.parquet`` with
        ``is_survey_candidate`` True), in catalogue order.  ``ra`` and
        ``dec`` are required; the other columns shown (``tile_id``,
        ``plate_label``, ``MAG_AUTO``, the funnel's ``cut_*`` / ``no_*`` /
        ``veto_*`` columns ...) are used when present.
    stamps : list of str or None
        Per candidate, the relative path of its stamp PNG from the folder of
        ``path`` (``"stamps/<tile>/<NUMBER>.png"``), or None for no stamp.
    path : pathlib.Path
        The HTML file to write (atomically).
    title : str
        Page title.
    stamp_prefix : str, optional
        Where the stamps usually are; informative only, ``stamps`` is used as given.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        If ``stamps`` does not have one entry per candidate or ``ra``/``dec`` are missing.
    """
    del stamp_prefix  # the paths in ``stamps`` are used as they are
    missing = [c for c in ("ra", "dec") if c not in candidates.columns]
    if missing:
        raise ValueError(f"gallery candidates lack column(s) {missing}")
    if len(stamps) != len(candidates):
        raise ValueError(f"gallery got {len(stamps)} stamps for {len(candidates)} candidates (one each needed)")
    text = gallery_html(candidates.reset_index(drop=True), list(stamps), title=title)
    return write_text_atomic(Path(path), text)
