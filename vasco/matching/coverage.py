"""Which reference catalogue covers a tile (a module of its own: the steps that fetch catalogues
depend on it, not on the matching code)."""

from __future__ import annotations

__all__ = ["catalog_applies"]


def catalog_applies(name: str, dec: float, ps1_dec_min: float) -> tuple[bool, str | None]:
    """Does the reference catalogue ``name`` cover a tile at Dec ``dec``?

    Parameters
    ----------
    name : str
        Catalogue name (``gaia``, ``ps1``).
    dec : float
        The tile centre's declination (degrees).
    ps1_dec_min : float
        PS1's southern limit (``matching.ps1_dec_min``).

    Returns
    -------
    tuple
        ``(True, None)``, or ``(False, why)`` for PS1 south of its limit.
    """
    if name == "ps1" and dec < ps1_dec_min:
        return False, f"PS1 does not cover Dec {dec:.3f} < {ps1_dec_min}"
    return True, None
