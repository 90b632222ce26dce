"""Publishing a survey.

The merged catalogue and summary (:mod:`.merge`), duplicates across tiles
(:mod:`.dedup`), the paper's funnel (:mod:`.paper`).
"""
