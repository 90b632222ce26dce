"""The text of a survey's Prefect artifacts: pure functions that return Markdown (or table rows).

The survey flow posts these as artifacts (``vasco-survey-funnel``,
``vasco-survey-candidates``, ``vasco-survey-products``,
``vasco-survey-report``); the posting is in :mod:`tasks.survey_tasks`, the
text is made here, from the summary, the tile records and the report's
manifest, so it can be read and tested without Prefect.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

__all__ = [
    "CANDIDATE_COLUMNS",
    "funnel_markdown",
    "tile_funnel_table",
    "products_markdown",
    "report_markdown",
    "candidate_rows",
]

#: Columns of the candidates table artifact, those the catalogue has, in this order.
CANDIDATE_COLUMNS = (
    "tile_id",
    "NUMBER",
    "ra",
    "dec",
    "plate_region",
    "plate_epoch",
    "MAG_AUTO",
    "SNR_WIN",
    "FWHM_IMAGE",
    "SPREAD_MODEL",
    "edge_dist_px",
)

#: Survey-level products listed by :func:`products_markdown`: file name and what it holds.
_PRODUCTS = (
    ("summary.json", "summary, funnel, injection scores"),
    ("candidates.parquet", "unique candidates"),
    ("detections.parquet", "every detection"),
    ("duplicates.parquet", "sources measured in several tiles"),
    ("astrometry.csv", "astrometric quality per tile"),
    ("config.json", "the configuration"),
)


def funnel_markdown(summary: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> str:
    """The survey's funnel: totals, the comparison with the paper, tiles, trust, injection, per tile.

    Parameters
    ----------
    summary : mapping
        The survey summary (``summary.json``).
    records : sequence of mapping
        The tile records (``tile.json``), for :func:`tile_funnel_table`.

    Returns
    -------
    str
        Markdown.
    """
    lines = ["# VASCO survey funnel", "", "| step | sources left |", "|---|---:|"]
    lines += [f"| {k} | {v:,} |" for k, v in summary["funnel"].items()]
    rows = summary.get("funnel_vs_paper") or []
    if rows:
        lines += [
            "",
            "## Side by side with Solano et al. 2022",
            "",
            "| stage | ours | kept | paper | kept |",
            "|---|---:|---:|---:|---:|",
        ]
        for r in rows:
            ours = "-" if r["ours"] is None else f"{r['ours']:,}"
            ok = "" if r["ours_kept"] is None else f"{r['ours_kept']:.1%}"
            pk = "" if r["paper_kept"] is None else f"{r['paper_kept']:.1%}"
            lines.append(f"| {r['stage']} | {ours} | {ok} | {r['paper']:,} | {pk} |")
    t = summary["tiles"]
    lines += [
        "",
        f"Tiles: {t['planned']} planned, {t['processed']} processed, {t['rejected']} rejected, {t['failed']} failed.",
    ]
    if summary["failures"]:
        lines += [
            "",
            "Rejected or failed tiles by reason: " + ", ".join(f"`{k}` {v}" for k, v in summary["failures"].items()),
        ]
    trust = summary.get("astrometry_trust") or {}
    if trust.get("tiles_untrusted"):
        lines += [
            "",
            f"Astrometry not trusted on {trust['tiles_untrusted']} processed tile(s), with "
            f"{trust['candidates_untrusted']} candidate(s) (marked `astrometry_trusted` false): "
            + ", ".join(f"`{k}` {v}" for k, v in trust["by_reason"].items()),
        ]
    inj = summary.get("injection")
    if inj:
        comp = "n/a" if inj["completeness"] is None else f"{inj['completeness']:.3f}"
        pur = "n/a" if inj["purity"] is None else f"{inj['purity']:.3f}"
        lines += [
            "",
            f"Synthetic injection: {inj['recovered']}/{inj['recoverable']} recoverable transients recovered "
            f"(completeness {comp}); purity {pur}; false candidates by class: {inj['false_by_class']}.",
        ]
    lines += tile_funnel_table(records)
    return "\n".join(lines)


def tile_funnel_table(records: Sequence[Mapping[str, Any]], max_rows: int = 500) -> list[str]:
    """Markdown lines: one row per tile with its funnel, stage by stage.

    Failed and rejected tiles come first; at most ``max_rows`` rows (every
    tile's funnel is in its tile.json and in summary.json's totals).

    Parameters
    ----------
    records : sequence of mapping
        The tile records (``tile.json``).
    max_rows : int, optional
        Rows shown at most.

    Returns
    -------
    list of str
        The lines, starting with an empty one.
    """
    stages: list[str] = []
    for r in records:
        for k in r.get("funnel") or {}:
            if k not in stages:
                stages.append(k)
    ordered = [r for r in records if r.get("status") in ("failed", "rejected")] + [
        r for r in records if r.get("status") == "ok"
    ]
    lines = [
        "",
        "## Funnel per tile",
        "",
        "| tile | plate | status | reason | " + " | ".join(stages) + " |",
        "|---|---|---|---|" + "---:|" * len(stages),
    ]
    for r in ordered[:max_rows]:
        plate = (r.get("plate") or {}).get("region") or "-"
        funnel = r.get("funnel") or {}
        cells = " | ".join(f"{funnel[k]:,}" if k in funnel else "" for k in stages)
        lines.append(f"| {r['tile_id']} | {plate} | {r.get('status')} | {r.get('reason') or ''} | {cells} |")
    if len(ordered) > max_rows:
        lines += ["", f"(first {max_rows} of {len(ordered)} tiles; every tile's funnel is in its tile.json)"]
    return lines


def products_markdown(root: str, records: Sequence[Mapping[str, Any]], tile_plots: str = "candidates") -> str:
    """Where the survey's products are, and the astrometric residual plots the report draws (at most 200).

    Parameters
    ----------
    root : str
        The survey root as shown to the user (a folder or a URL).
    records : sequence of mapping
        The tile records (``tile.json``).
    tile_plots : str
        The ``report.tile_plots`` setting (which tiles get a residual plot:
        :func:`vasco.qc.astrometry.residual_plot_wanted`).

    Returns
    -------
    str
        Markdown.
    """
    from vasco.qc.astrometry import RESIDUAL_PLOT, residual_plot_wanted

    lines = ["# VASCO survey products", "", f"Survey root: `{root}`", "", "| product | path |", "|---|---|"]
    for name, what in _PRODUCTS:
        lines.append(f"| {what} | `{root}/{name}` |")
    plots = [r for r in records if residual_plot_wanted(r, tile_plots)]
    if plots:
        lines += ["", "Astrometric residual plots (drawn by the report):", ""]
        lines += [f"- {r['tile_id']}: `{root}/tiles/{r['tile_id']}/{RESIDUAL_PLOT}`" for r in plots[:200]]
    return "\n".join(lines)


def report_markdown(root: str, index: str, manifest: Mapping[str, Any]) -> str:
    """What the survey's report holds and where its page is.

    Parameters
    ----------
    root : str
        The survey root as shown to the user.
    index : str
        Where the report page is (a local path or a URL).
    manifest : mapping
        What :func:`vasco.report.build.build_report` returns.

    Returns
    -------
    str
        Markdown.
    """
    man = manifest
    lines = [
        f"# VASCO report of {root}",
        "",
        f"- report page: `{index}` (open it in a browser; no server needed)",
        f"- candidate gallery: `report/gallery.html`, {man['candidates']} candidates with {man['stamps']} stamps",
        f"- coverage: `report/moc.fits` (IVOA MOC), {man['tiles']['ok']} tiles, {man['coverage_deg2']:.2f} deg²; "
        "sky map `report/sky.png`",
        "- survey QC plots: " + ", ".join(f"`{p}`" for p in man["plots"].values()),
        f"- per-tile QC plots: {len(man['tile_plots'])} (`tiles/<id>/qc/tile.png`)",
        f"- built in {man['timings']['total_s']:.1f} s",
    ]
    return "\n".join(lines)


def candidate_rows(candidates: pd.DataFrame, max_rows: int) -> list[dict[str, Any]]:
    """The first ``max_rows`` candidates, in :data:`CANDIDATE_COLUMNS`, rounded to 6 decimals, as records.

    Parameters
    ----------
    candidates : pandas.DataFrame
        The survey's candidates (``candidates.parquet``).
    max_rows : int
        Rows at most.

    Returns
    -------
    list of dict
        One dict per row, for a table artifact.
    """
    cols = [c for c in CANDIDATE_COLUMNS if c in candidates.columns]
    return candidates[cols].head(max_rows).round(6).to_dict(orient="records")
