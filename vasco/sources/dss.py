"""POSS-I E cutouts from the STScI Digitized Sky Survey service (``dss_search``).

:func:`fetch_dss_tile` asks the service for a cutout::

    <base>?v=poss1_red&r=<ra deg>&d=<dec deg>&e=J2000&h=<arcmin>&w=<arcmin>&f=fits

and is transactional: the answer streams into a temporary file beside
``dest`` and is checked (:func:`check_dss_file`) before anything gets a final
name:

1. not empty (``FAIL_DSS_EMPTY``);
2. gzip (by its magic bytes) is decompressed, size-capped
   (``FAIL_DSS_TOO_BIG``, ``FAIL_DSS_TRUNCATED`` for a cut gzip stream);
3. an HTML page (``<`` first, or ``<html`` in the first 4 KB) is
   ``FAIL_DSS_HTML``; anything else that does not start with the FITS
   signature ``SIMPLE  =  ... T`` is ``FAIL_DSS_NOT_FITS``;
4. FITS structure: size a multiple of 2880 and every HDU's data as long as
   its header says (``FAIL_DSS_TRUNCATED``);
5. astropy reads the primary header and a 2-D image of at least 2x2 pixels
   (``FAIL_DSS_BAD_FITS``);
6. usable astrometry: the GSSS plate polynomial
   (:meth:`vasco.plates.model.PlateSolution.from_header`) or else the
   explicit TAN WCS (:func:`vasco.plates.model.explicit_wcs`) gives finite
   sky positions (``FAIL_DSS_NO_ASTROMETRY``), and by default puts the
   requested position on the image (``FAIL_DSS_WRONG_FIELD``);
7. the plate is POSS-I E (:func:`vasco.plates.header.check_poss1e`): a
   rejection is raised with the check's own token (``REJECT_NON_POSS`` or
   ``REJECT_NO_PLATE_ID``); an unparseable ``DATE-OBS`` is
   ``FAIL_DSS_BAD_HEADER``.

Only then is the primary header written beside the image as
``dest.with_suffix('.header.txt')`` (``image.fits`` -> ``image.header.txt``,
one 80-character card per line), and the image renamed to ``dest`` (last, so
``dest`` present implies its header file is too).  On any failure the
temporary files are removed and neither name is created; an existing
``dest`` from an earlier run is left as it was.

The transport failures are those of :mod:`vasco.sources.http` with the
service name ``DSS`` (``FAIL_DSS_HTTP_404``, ``FAIL_DSS_TIMEOUT``, ...).
Content failures (HTML, truncated, empty...) are not retried here: the
caller (a Prefect task) decides whether to try the tile again later.

The base URL is, in order: the ``base_url`` argument, the environment
variable ``VASCO_DSS_URL``, ``DssConfig.base_url``.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from vasco.plates.header import check_poss1e, read_fits_header
from vasco.plates.model import PlateSolution, explicit_wcs
from vasco.sources.config import DssConfig
from vasco.sources.http import HttpClient, SourceError

__all__ = [
    "DSS_URL_ENV",
    "dss_base_url",
    "dss_params",
    "fetch_dss_tile",
    "check_dss_file",
    "header_path_for",
]

DSS_URL_ENV = "VASCO_DSS_URL"
SERVICE = "DSS"

_BLOCK = 2880
_GZIP_MAGIC = b"\x1f\x8b"
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def _fail(what: str, message: str) -> SourceError:
    return SourceError(f"FAIL_{SERVICE}_{what}", message)


def dss_base_url(base_url: str | None = None, config: DssConfig | None = None) -> str:
    """The service URL: argument, else ``$VASCO_DSS_URL``, else the configuration."""
    if base_url:
        return base_url
    env = os.environ.get(DSS_URL_ENV, "").strip()
    if env:
        return env
    return (config or DssConfig()).base_url


def dss_params(ra: float, dec: float, size_arcmin: float, survey: str = "poss1_red") -> dict[str, str]:
    """Query parameters of one cutout request (degrees; size in arcmin)."""
    return {
        "v": survey,
        "r": f"{ra:.6f}",
        "d": f"{dec:.6f}",
        "e": "J2000",
        "h": f"{size_arcmin:.4g}",
        "w": f"{size_arcmin:.4g}",
        "f": "fits",
    }


def header_path_for(dest: Path) -> Path:
    """Where :func:`fetch_dss_tile` writes the primary header of ``dest`` (``.header.txt``)."""
    return Path(dest).with_suffix(".header.txt")


def _unlink(path: Path | None) -> None:
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def fetch_dss_tile(
    ra: float,
    dec: float,
    size_arcmin: float,
    dest: Path,
    base_url: str | None = None,
    *,
    config: DssConfig | None = None,
    http: HttpClient | None = None,
) -> Path:
    """Download, check and store one POSS-I E cutout at ``dest``.

    Parameters
    ----------
    ra, dec : float
        Centre in degrees (ICRS/J2000).
    size_arcmin : float
        Width and height of the cutout.
    dest : Path
        Final path of the FITS file; its header goes to :func:`header_path_for`.
    base_url : str, optional
        Overrides ``$VASCO_DSS_URL`` and the configuration.
    config : DssConfig, optional
    http : HttpClient, optional
        Client to use (tests inject one with a recording ``sleep``); its
        service name is replaced by ``DSS`` and, when ``config`` is not given,
        its limits are used as they are.

    Returns
    -------
    Path
        ``dest``.

    Raises
    ------
    SourceError
        With a reason token (module docstring); nothing is left behind.
    ValueError
        For a position or size out of range.
    """
    cfg = config or DssConfig()
    ra, dec, size_arcmin = float(ra), float(dec), float(size_arcmin)
    if not (np.isfinite(ra) and np.isfinite(dec) and -90.0 <= dec <= 90.0):
        raise ValueError(f"DSS position ra={ra}, dec={dec} is not a valid sky position")
    if not (0.0 < size_arcmin <= cfg.max_size_arcmin):
        raise ValueError(f"DSS cutout size {size_arcmin} arcmin is outside (0, {cfg.max_size_arcmin}]")
    ra %= 360.0
    if http is None:
        client = HttpClient(SERVICE, cfg.http)
    else:
        client = http.with_service(SERVICE, cfg.http if config is not None else None)
    dest = Path(dest)
    url = dss_base_url(base_url, cfg)
    tmp = client.download(url, dest.parent, params=dss_params(ra, dec, size_arcmin, cfg.survey), prefix=dest.name)
    head_tmp: Path | None = None
    head_final = header_path_for(dest)
    try:
        header = check_dss_file(
            tmp,
            ra=ra if cfg.require_position_inside else None,
            dec=dec if cfg.require_position_inside else None,
            max_bytes=client.config.max_bytes,
        )
        fd, name = tempfile.mkstemp(prefix=f".{head_final.name}.", suffix=".part", dir=dest.parent)
        head_tmp = Path(name)
        with os.fdopen(fd, "w", encoding="ascii", errors="replace") as fh:
            fh.write(header.tostring(sep="\n", endcard=True, padding=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(head_tmp, head_final)
        head_tmp = None
        try:
            os.replace(tmp, dest)
        except BaseException:
            _unlink(head_final)
            raise
        tmp = None  # type: ignore[assignment]
    finally:
        _unlink(tmp)
        _unlink(head_tmp)
    return dest


# --------------------------------------------------------------------------- checks


def _gunzip_in_place(path: Path, max_bytes: int) -> None:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".gunzip", dir=path.parent)
    out_path = Path(name)
    try:
        n = 0
        with os.fdopen(fd, "wb") as out, gzip.open(path, "rb") as src:
            while block := src.read(1 << 20):
                n += len(block)
                if n > max_bytes:
                    raise _fail("TOO_BIG", f"{path.name}: gzip answer inflates past {max_bytes} bytes")
                out.write(block)
        os.replace(out_path, path)
    except EOFError as exc:
        raise _fail("TRUNCATED", f"gzip stream ends early ({exc})") from None
    except (gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise _fail("BAD_GZIP", f"cannot decompress the gzip answer ({exc})") from None
    finally:
        _unlink(out_path)


def _card_value(block: bytes, key: bytes) -> bytes | None:
    for i in range(0, len(block), 80):
        card = block[i : i + 80]
        if card[:8] == key.ljust(8) and card[8:10] == b"= ":
            return card[10:].split(b"/", 1)[0].strip()
    return None


def _fits_structure(path: Path, size: int) -> None:
    """Walk the HDUs; raise FAIL_DSS_TRUNCATED when data is missing."""
    if size % _BLOCK:
        raise _fail("TRUNCATED", f"file size {size} is not a multiple of {_BLOCK} (FITS blocks): the answer was cut")
    with open(path, "rb") as fh:
        offset = 0
        hdu = 0
        while offset < size:
            fh.seek(offset)
            header = b""
            while True:
                block = fh.read(_BLOCK)
                if len(block) < _BLOCK:
                    if hdu == 0 or header:
                        raise _fail("TRUNCATED", f"HDU {hdu}: header has no END card before the end of the file")
                    return
                if hdu > 0 and not header and not block.startswith(b"XTENSION"):
                    return  # trailing padding or garbage after the last HDU: ignored
                header += block
                if any(header[i : i + 8] == b"END     " for i in range(len(header) - _BLOCK, len(header), 80)):
                    break
            try:
                bitpix = abs(int(_card_value(header, b"BITPIX") or b"0"))
                naxis = int(_card_value(header, b"NAXIS") or b"0")
                dims = [int(_card_value(header, f"NAXIS{i}".encode()) or b"0") for i in range(1, naxis + 1)]
                pcount = int(_card_value(header, b"PCOUNT") or b"0")
                gcount = int(_card_value(header, b"GCOUNT") or b"1")
            except ValueError as exc:
                raise _fail("BAD_FITS", f"HDU {hdu}: unreadable structural keyword ({exc})") from None
            nelem = int(np.prod(dims, dtype=np.int64)) if naxis > 0 else 0
            nbytes = bitpix // 8 * gcount * (pcount + nelem)
            padded = -(-nbytes // _BLOCK) * _BLOCK
            offset += len(header) + padded
            if offset > size:
                raise _fail(
                    "TRUNCATED",
                    f"HDU {hdu}: data needs {nbytes} bytes but the file ends {offset - size} bytes early",
                )
            hdu += 1


def _check_astrometry(header: fits.Header, shape: tuple[int, int], ra: float | None, dec: float | None) -> None:
    ny, nx = shape
    cx, cy = (nx + 1) / 2.0, (ny + 1) / 2.0
    problems: list[str] = []
    solutions: list[tuple[str, Callable[..., Any]]] = []
    try:
        plate = PlateSolution.from_header(header)
        c_ra, c_dec = plate.pix_to_sky(cx, cy)
        if not (np.isfinite(c_ra) and np.isfinite(c_dec)):
            raise ValueError("plate polynomial gives a non-finite position at the image centre")
        solutions.append(("plate polynomial", plate.sky_to_pix))
    except (ValueError, RuntimeError) as exc:
        problems.append(f"plate polynomial: {exc}")
    try:
        wcs = explicit_wcs(header)
        c_ra, c_dec = wcs.all_pix2world(cx, cy, 1)
        if not (np.isfinite(c_ra) and np.isfinite(c_dec)):
            raise ValueError("explicit WCS gives a non-finite position at the image centre")
        solutions.append(("explicit WCS", lambda r, d, w=wcs: w.all_world2pix(r, d, 1)))
    except (ValueError, RuntimeError, KeyError) as exc:
        problems.append(f"explicit WCS: {exc}")
    if not solutions:
        raise _fail("NO_ASTROMETRY", "no usable astrometric solution (" + "; ".join(problems) + ")")
    if ra is None or dec is None:
        return
    name, sky_to_pix = solutions[0]
    try:
        x, y = sky_to_pix(ra, dec)
        inside = bool(0.5 <= float(x) <= nx + 0.5 and 0.5 <= float(y) <= ny + 0.5)
    except (ValueError, RuntimeError):
        x = y = float("nan")
        inside = False
    if not inside:
        raise _fail(
            "WRONG_FIELD",
            f"the requested position ({ra:.5f}, {dec:+.5f}) falls at pixel ({float(x):.1f}, {float(y):.1f}) "
            f"by the {name}, outside the {nx}x{ny} image",
        )


def check_dss_file(
    path: Path,
    *,
    ra: float | None = None,
    dec: float | None = None,
    max_bytes: int = DssConfig().http.max_bytes,
) -> fits.Header:
    """Check a downloaded DSS answer in place (gzip is decompressed in place).

    Parameters
    ----------
    path : Path
        The file.
    ra, dec : float, optional
        Requested centre: when given, the astrometry must put it on the image.
    max_bytes : int
        Limit on the decompressed size of a gzip answer.

    Returns
    -------
    astropy.io.fits.Header
        The primary header of an accepted POSS-I E cutout.

    Raises
    ------
    SourceError
        ``FAIL_DSS_*`` or the plate check's ``REJECT_*`` token.
    """
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise _fail("EMPTY", "the service answered with an empty body")
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if head[:2] == _GZIP_MAGIC:
        _gunzip_in_place(path, max_bytes)
        size = path.stat().st_size
        if size == 0:
            raise _fail("EMPTY", "the gzip answer decompresses to nothing")
        with open(path, "rb") as fh:
            head = fh.read(4096)
    is_fits = head[:9] == b"SIMPLE  =" and head[10:30].strip() == b"T"
    if not is_fits:
        stripped = head.lstrip()
        if stripped.startswith(b"<") or b"<html" in head.lower():
            m = _TITLE.search(head)
            title = f" titled {_snippet_text(m.group(1))!r}" if m else ""
            raise _fail("HTML", f"the service answered with an HTML page{title}: {_snippet_text(stripped[:200])!r}")
        raise _fail("NOT_FITS", f"the answer does not start with the FITS signature: {head[:40]!r}")
    _fits_structure(path, size)
    try:
        header = read_fits_header(path)
        with fits.open(path, memmap=False) as hdul:
            data = hdul[0].data
            shape = None if data is None else tuple(data.shape)
    except (OSError, ValueError, TypeError, IndexError) as exc:
        raise _fail("BAD_FITS", f"astropy cannot read the cutout ({exc})") from None
    if shape is None or len(shape) != 2 or min(shape) < 2:
        raise _fail("BAD_FITS", f"the primary HDU is not a 2-D image (shape {shape})")
    _check_astrometry(header, shape, ra, dec)
    try:
        res = check_poss1e(header)
    except ValueError as exc:
        raise _fail("BAD_HEADER", str(exc)) from None
    if not res.ok:
        raise SourceError(res.reason or "REJECT_NON_POSS", res.detail)
    return header


def _snippet_text(data: bytes) -> str:
    return " ".join(data.decode("utf-8", errors="replace").split())[:160]
