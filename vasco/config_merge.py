"""How a run's configuration is put together from defaults, a file and explicit options.

One precedence holds for every way a survey starts (``vasco survey``,
``python flows/survey.py``, the deployments): the model's defaults
(:class:`~vasco.config.VascoConfig`, the only place they are written) < the
configuration file < the options given explicitly.  ``vasco tile`` starts
from the same base and fixes what a single local cutout implies.
"""

from __future__ import annotations

from pathlib import Path

from vasco.config import VascoConfig

__all__ = ["read_config", "build_config", "tile_config"]


def read_config(config_file: str | Path | None) -> VascoConfig:
    """The configuration file's values over the model defaults (the defaults alone without a file).

    Parameters
    ----------
    config_file : str or Path, optional
        JSON, TOML (``.toml``) or YAML (``.yaml``, ``.yml``); see
        :meth:`vasco.config.VascoConfig.read`.

    Returns
    -------
    VascoConfig
        The validated configuration.

    Raises
    ------
    ValueError
        Naming the file and what is wrong with it.
    """
    return VascoConfig.read(Path(config_file)) if config_file else VascoConfig()


def build_config(
    sky: str | None = None,
    tiles: int | None = None,
    seed: int | None = None,
    size_arcmin: float | None = None,
    workers: int | None = None,
    config_file: str | None = None,
    catalogs: str | None = None,
    catalog_files: dict[str, str] | None = None,
) -> VascoConfig:
    """The run's configuration, with one precedence for every way a survey starts.

    Model defaults (:class:`~vasco.config.VascoConfig`, the only place they
    are written) < the configuration file (``config_file``: JSON, TOML or
    YAML) < the options given explicitly here.  An option left at ``None``
    was not given and changes nothing, so a file's ``tiles = 500`` holds
    unless ``tiles`` is passed.  The command line, ``python flows/survey.py``
    and the deployments all come through here.

    Parameters
    ----------
    sky, tiles, seed, size_arcmin, workers : optional
        ``sky`` and the ``survey`` section's values; ``None``: not given.
    config_file : str, optional
        The configuration file.
    catalogs : str, optional
        ``catalogs.source``.
    catalog_files : dict of str to str, optional
        Local catalogue files by name (``gaia``, ``ps1``), added to
        ``catalogs.local``; without ``catalogs`` they make the source ``local``.

    Returns
    -------
    VascoConfig
        The validated configuration.

    Raises
    ------
    ValueError
        pydantic's ValidationError, naming the bad parameter.
    """
    data = read_config(config_file).model_dump()
    if sky is not None:
        data["sky"] = sky
    given = {"tiles": tiles, "seed": seed, "size_arcmin": size_arcmin, "workers": workers}
    data["survey"] = {**data["survey"], **{k: v for k, v in given.items() if v is not None}}
    cats = data["catalogs"]
    if catalogs:
        cats["source"] = catalogs
    if catalog_files:
        cats["local"] = {**cats["local"], **catalog_files}
        if not catalogs:
            cats["source"] = "local"
    return VascoConfig.model_validate(data)


def tile_config(catalog_files: dict[str, str], config_file: str | None = None) -> VascoConfig:
    """The configuration of ``vasco tile``: one real cutout with local catalogue files.

    The file's (or the default) configuration, with ``sky = 'dss'`` (the
    cutout stands in for a DSS one), the catalogues read from
    ``catalog_files`` only, and only the catalogues given vetoing a detection.

    Parameters
    ----------
    catalog_files : dict of str to str
        Local catalogue files by name (``gaia``, ``ps1``).
    config_file : str, optional
        The configuration file.

    Returns
    -------
    VascoConfig
        The validated configuration.

    Raises
    ------
    ValueError
        A bad configuration file or parameter.
    """
    data = read_config(config_file).model_dump()
    data["sky"] = "dss"  # real data: the file stands in for a DSS cutout
    data["catalogs"] = {**data["catalogs"], "source": "local", "local": catalog_files}
    # Only the catalogues given veto a detection.
    data["matching"] = {**data["matching"], "catalogs": [c for c in ("gaia", "ps1") if c in catalog_files]}
    return VascoConfig.model_validate(data)
