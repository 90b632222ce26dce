"""Score a synthetic tile's candidates against its truth table.

Definitions (the contract of ``summary.json``'s ``injection`` block):

- ``injected``: transients rendered on the plate;
- ``recoverable``: injected transients that would pass the quality cuts if
  detected.  For a transient that *was* detected (a detection within
  ``match_arcsec``), that is read off its measurement: it passed every cut
  (SNR_WIN > 30, point-like, ...).  For one that was not detected, the
  synthetic sky's prediction decides (``truth.recoverable``: model SNR_WIN > 30
  and not photographically saturated), so a detection failure still counts
  against completeness;
- ``recovered``: recoverable transients with a candidate within ``match_arcsec``;
- ``completeness`` = recovered / recoverable: what the counterpart vetoes,
  the later vetoes, the astrometry and the detection lose of what the cuts keep;
- ``lost_by_stage``: the recoverable transients that are not candidates, by
  the funnel stage that removed them (``not_detected`` if none);
- ``completeness_searchable``: recovered / (recoverable minus those lost to
  the bright-star rule): the paper's rule excludes zones around bright stars
  from the search by design, so this is the completeness over the sky the
  method searches;
- ``model_recoverable`` / ``completeness_model``: the same with the
  prediction alone for every transient, so the losses of the cuts themselves
  (SPREAD_MODEL, shape and MAD-clip scatter near SNR 30) are included;
- ``purity`` = candidates that are injected transients / candidates;
- ``false_by_class``: the other candidates, by the truth class of what lies
  under them (``high_proper_motion``, ``defect`` for emulsion spots, dust and
  scratches, ``galaxy``, ``spike`` for bright-star spikes and halos,
  ``asteroid``, ``infrared`` for IR-only sources, ``variable``, ``other``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from vasco.matching.crossmatch import angular_separation_arcsec, nearest_within
from vasco.qc.compare import funnel_stage

__all__ = ["FALSE_CLASSES", "CLASS_OF", "score_tile", "combine_scores"]

FALSE_CLASSES = ("high_proper_motion", "defect", "galaxy", "spike", "asteroid", "infrared", "variable", "other")
#: Truth class -> the false-candidate class it is counted under.
CLASS_OF = {
    "hpm_star": "high_proper_motion",
    "asteroid": "asteroid",
    "ir_source": "infrared",
    "variable": "variable",
    "defect": "defect",
    "dust": "defect",
    "scratch": "defect",
    "galaxy": "galaxy",
    "spike": "spike",
    "halo": "spike",
}


def _classify(cands: pd.DataFrame, truth: pd.DataFrame, point_arcsec: float) -> list[str]:
    ra = cands["ra"].to_numpy(np.float64)
    dec = cands["dec"].to_numpy(np.float64)
    labels = np.full(len(cands), "other", dtype=object)
    if len(cands) == 0:
        return []
    others = truth.loc[truth["cls"] != "transient"]
    extent = others["extent_arcsec"].to_numpy(np.float64) if "extent_arcsec" in others else np.zeros(len(others))
    extent = np.nan_to_num(extent, nan=0.0)
    point = others.loc[extent <= point_arcsec]
    idx, _ = nearest_within(ra, dec, point["ra"], point["dec"], point_arcsec)
    hit = idx >= 0
    labels[hit] = [CLASS_OF.get(c, "other") for c in point["cls"].to_numpy()[idx[hit]]]
    # Extended truth objects (spikes, halos, scratches, large galaxies): inside their extent.
    ext = others.loc[extent > point_arcsec]
    if len(ext):
        todo = np.flatnonzero(~hit)
        for i in todo:
            sep = angular_separation_arcsec(ra[i], dec[i], ext["ra"].to_numpy(), ext["dec"].to_numpy())
            inside = sep <= ext["extent_arcsec"].to_numpy(np.float64)
            if inside.any():
                j = int(np.argmin(np.where(inside, sep, np.inf)))
                labels[i] = CLASS_OF.get(ext["cls"].to_numpy()[j], "other")
    return list(labels)


def score_tile(detections: pd.DataFrame, truth: pd.DataFrame, match_arcsec: float = 3.0) -> dict:
    """Injection figures of one tile (see the module docstring).

    ``detections`` is the tile's detections table with ``ra``, ``dec``,
    ``passes_cuts`` and ``is_candidate``.
    """
    trans = truth.loc[truth["cls"] == "transient"]
    predicted = trans["recoverable"].to_numpy(bool)
    # Passes the quality cuts: those before the counterparts and SPREAD_MODEL where tested
    # (a detection with a counterpart never reaches that cut).
    passes = detections["passes_cuts"].to_numpy(bool)
    if "cut_spread_model" in detections:
        passes = passes & detections["cut_spread_model"].fillna(True).to_numpy(bool)
    cands = detections.loc[detections["is_candidate"].to_numpy(bool)]
    # Nearest detection of each transient: did it pass the cuts?
    didx, _ = nearest_within(trans["ra"], trans["dec"], detections["ra"], detections["dec"], match_arcsec)
    detected = didx >= 0
    passed = np.zeros(len(trans), dtype=bool)
    passed[detected] = passes[didx[detected]]
    recoverable = np.where(detected, passed, predicted)
    idx, _ = nearest_within(trans["ra"], trans["dec"], cands["ra"], cands["dec"], match_arcsec)
    found = idx >= 0
    cidx, _ = nearest_within(cands["ra"], cands["dec"], trans["ra"], trans["dec"], match_arcsec)
    is_true = cidx >= 0
    labels = _classify(cands.loc[~is_true], truth, point_arcsec=5.0)
    false_by_class = {k: 0 for k in FALSE_CLASSES}
    for lab in labels:
        false_by_class[lab] += 1
    # Where the recoverable transients that are not candidates were lost.
    stages = funnel_stage(detections)
    lost: dict[str, int] = {}
    for k in np.flatnonzero(recoverable & ~found):
        name = str(stages[didx[k]]) if detected[k] else "not_detected"
        lost[name] = lost.get(name, 0) + 1
    return {
        "injected": int(len(trans)),
        "detected": int(detected.sum()),
        "recoverable": int(recoverable.sum()),
        "recovered": int((found & recoverable).sum()),
        "model_recoverable": int(predicted.sum()),
        "model_recovered": int((found & predicted).sum()),
        "recovered_any": int(found.sum()),
        "candidates": int(len(cands)),
        "true_candidates": int(is_true.sum()),
        "false_by_class": false_by_class,
        "lost_by_stage": dict(sorted(lost.items())),
    }


def combine_scores(scores: list[dict]) -> dict:
    """Sum tile scores and derive completeness and purity."""
    keys = (
        "injected",
        "detected",
        "recoverable",
        "recovered",
        "model_recoverable",
        "model_recovered",
        "recovered_any",
        "candidates",
        "true_candidates",
    )
    total: dict[str, Any] = {k: int(sum(s[k] for s in scores)) for k in keys}
    total["false_by_class"] = {c: int(sum(s["false_by_class"][c] for s in scores)) for c in FALSE_CLASSES}
    lost: dict[str, int] = {}
    for s in scores:
        for k, v in s.get("lost_by_stage", {}).items():
            lost[k] = lost.get(k, 0) + int(v)
    total["lost_by_stage"] = dict(sorted(lost.items()))

    def ratio(num: str, den: str) -> float | None:
        return total[num] / total[den] if total[den] else None

    total["completeness"] = ratio("recovered", "recoverable")
    # The paper's bright-star rule removes a fixed share of the sky by design: completeness
    # over the sky the method searches leaves out the transients that fall in those zones.
    in_zones = lost.get("not_bright_star", 0)
    searchable = total["recoverable"] - in_zones
    total["completeness_searchable"] = total["recovered"] / searchable if searchable else None
    total["completeness_model"] = ratio("model_recovered", "model_recoverable")
    total["purity"] = ratio("true_candidates", "candidates")
    return total
