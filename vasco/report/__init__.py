"""The survey report: QC plots, the coverage MOC, candidate stamps, the gallery and the report page.

Everything here reads a finished (or partly finished) survey folder and
writes under ``DIR/report/`` (and each tile's ``qc/`` folder); nothing
changes a tile's science outputs.  Layout::

    DIR/report/index.html          the report page (summary, funnel, plots, coverage, tiles, gallery link)
    DIR/report/gallery.html        one card per survey candidate (sortable, filterable, opens from disk)
    DIR/report/moc.fits            the IVOA MOC of the processed tiles
    DIR/report/sky.png             all-sky Mollweide map of the MOC and the candidates
    DIR/report/plots/*.png         survey QC plots
    DIR/report/stamps/<tile>/<NUMBER>.png   POSS-I stamps of the candidates
    DIR/report/report.json         what was written, with the counts it describes
    DIR/tiles/<tile>/qc/tile.png   per-tile QC plot

Modules: :mod:`~vasco.report.plots` (QC plots), :mod:`~vasco.report.coverage`
(MOC and sky map), :mod:`~vasco.report.stamps` (cutout stamps),
:mod:`~vasco.report.gallery` (gallery page), :mod:`~vasco.report.page`
(report page), :mod:`~vasco.report.build` (puts them together).
"""
