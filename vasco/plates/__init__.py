"""POSS-I E plates of DSS1: plate solutions, the plate table, cutout headers.

* :mod:`vasco.plates.model` -- the GSSS plate polynomial of DSS headers
  (:class:`PlateSolution`), its TAN approximation (:func:`fit_tan_wcs`) and
  the explicit WCS of a header (:func:`explicit_wcs`).
* :mod:`vasco.plates.table` -- the shipped table of the 932 POSS-I E plates
  and the choice of the plate covering a position.
* :mod:`vasco.plates.cutout` -- headers of STScI ``dss_search`` cutouts.
* :mod:`vasco.plates.header` -- reading DSS headers, the POSS-I E check and
  plate epochs.

Pure numpy/astropy/pandas; no orchestration imports.
"""

from vasco.plates.cutout import cutout_header, cutout_shape_px, cutout_size_px
from vasco.plates.header import (
    REJECT_NO_PLATE_ID,
    REJECT_NON_POSS,
    HeaderCheck,
    check_poss1e,
    parse_date_obs,
    parse_plate_epoch,
    read_fits_header,
)
from vasco.plates.model import PlateSolution, explicit_wcs, fit_tan_wcs
from vasco.plates.table import (
    PlateRecord,
    covering_plate,
    covering_plates,
    find_plate,
    get_plate,
    load_plate_table,
)

__all__ = [
    "HeaderCheck",
    "PlateRecord",
    "PlateSolution",
    "REJECT_NON_POSS",
    "REJECT_NO_PLATE_ID",
    "check_poss1e",
    "covering_plate",
    "covering_plates",
    "cutout_header",
    "cutout_shape_px",
    "cutout_size_px",
    "explicit_wcs",
    "find_plate",
    "fit_tan_wcs",
    "get_plate",
    "load_plate_table",
    "parse_date_obs",
    "parse_plate_epoch",
    "read_fits_header",
]
