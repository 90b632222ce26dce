"""Publishing a survey: the merged catalogue and summary (merge), duplicates across tiles (dedup), the paper's funnel (paper)."""
