"""Clients for the real data: DSS cutouts, VizieR cones, CDS XMatch, local catalogue files.

* :mod:`vasco.sources.http`: the polite HTTP layer (timeouts, retries with
  backoff, Retry-After, size cap) and :class:`SourceError`;
* :mod:`vasco.sources.dss`: :func:`fetch_dss_tile`, a checked POSS-I E cutout;
* :mod:`vasco.sources.vizier`: :func:`query_cone`, complete cone queries;
* :mod:`vasco.sources.xmatch`: :func:`xmatch_detections`, chunked XMatch jobs;
* :mod:`vasco.sources.local`: :func:`read_local_cone`, CSV/Parquet/HATS files;
* :mod:`vasco.sources.config`: their settings (:class:`SourcesConfig`).

Nothing here imports Prefect.
"""

from vasco.sources.config import DssConfig, HttpConfig, SourcesConfig, VizierConfig, XMatchConfig
from vasco.sources.dss import fetch_dss_tile
from vasco.sources.http import HttpClient, SourceError
from vasco.sources.local import LocalCatalogError, read_local_cone
from vasco.sources.vizier import query_cone
from vasco.sources.xmatch import XMatchResult, xmatch_detections

__all__ = [
    "DssConfig",
    "HttpClient",
    "HttpConfig",
    "LocalCatalogError",
    "SourceError",
    "SourcesConfig",
    "VizierConfig",
    "XMatchConfig",
    "XMatchResult",
    "fetch_dss_tile",
    "query_cone",
    "read_local_cone",
    "xmatch_detections",
]
