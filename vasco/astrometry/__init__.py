"""astrometry"""
