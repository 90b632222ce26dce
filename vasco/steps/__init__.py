"""The per-tile steps: one module per step, each named after the step.

Every module holds a pure ``run(...)`` on tables, arrays and configuration
(no file I/O: testable in memory) and a thin shell of the module's name that
reads the step's input files, calls ``run``, writes the outputs atomically
inside the tile folder and saves the step record (:mod:`vasco.records`), so
the step is idempotent (:func:`vasco.steps.base.run_step`).  The acquiring
steps (``acquire``, ``catalogs``, ``veto_lists``) fetch files and have no
pure part.

Steps, in flow order (module = shell function = Prefect task = step record
``steps/<name>.json``):

==================  ==============================================================
``acquire``         the cutout (``acquire_synthetic``, ``acquire_dss``, ``acquire_file``)
``check_plate``     is it POSS-I E; the plate, its dates and epochs
``psf``             SExtractor pass 1 + PSFEx: the PSF model
``pass2``           SExtractor pass 2
``measure``         header sky positions and the plate frame
``catalogs``        reference catalogues (``catalogs`` cone/local, ``catalogs_xmatch``)
``astrometry``      the Gaia-tied plate solution and position errors
``match``           counterparts in each reference catalogue
``select``          quality cuts, counterpart tests, astrometric trust
``spread_model``    the SPREAD_MODEL cut (PSF fit where needed)
``veto_lists``      reference lists of the later vetoes (files or services)
``skybot_epoch``    the synthetic SkyBoT list at the plate epoch
``vetoes``          the later vetoes (:mod:`vasco.filters.registry`); detections, candidates
==================  ==============================================================

The order is :func:`vasco.chain.run_tile`'s.  One more step,
``astrometry_plot`` (the residual plot, ``qc/astrometry.png``), is run by the
report (:mod:`vasco.report.build`), off the tile's critical path.

This package's ``__init__`` imports nothing: a step's code fingerprint
(:mod:`vasco.codehash`) covers its own module and what it imports, not the
other steps.

Tile folder layout::

    tiles/<tile_id>/
        raw/image.fits           the POSS-I cutout
        catalogs/gaia.parquet    reference catalogues as served
        catalogs/ps1.parquet
        truth.parquet            synthetic sky only
        work/                    pass1.psf (the PSF model), pass2.ldac, measured/positioned/matched/selected/spread
                                 tables, astrometry.json and the fit's residual pairs
        qc/astrometry.png        astrometric residuals before and after the fit (drawn by the report)
        steps/<step>.json        step records
        detections.parquet       every detection, with cut and counterpart columns
        candidates.parquet       detections that pass the cuts and have no counterpart
        tile.json                status, reason, plate, funnel, config hash
"""
