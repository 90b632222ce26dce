"""Clients for the real data: DSS cutouts, VizieR cones, CDS XMatch, local catalogue files.

* :mod:`vasco.sources.http`: the polite HTTP layer (timeouts, retries with
  backoff, Retry-After, size cap) and :class:`SourceError`;
* :mod:`vasco.sources.dss`: :func:`fetch_dss_tile`, a checked POSS-I E cutout;
* :mod:`vasco.sources.vizier`: :func:`query_cone`, complete cone queries;
* :mod:`vasco.sources.xmatch`: :func:`xmatch_detections`, chunked XMatch jobs;
* :mod:`vasco.sources.local`: :func:`read_local_cone`, CSV/Parquet/HATS files;
* :mod:`vasco.sources.config`: their settings (:class:`SourcesConfig`).

Nothing here imports Prefect.  Import the clients from their modules: this
package imports none of them, so that :mod:`vasco.config` (which needs only
:mod:`vasco.sources.config`) does not make every step that reads the
configuration depend on the clients' code (:mod:`vasco.codehash`).
"""
