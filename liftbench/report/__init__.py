"""The report stage: reading result files into leaderboards, plots, figures and the site.

Nothing here computes a run; everything reads the Parquet files the run stage wrote (and the paper's
reported numbers in ``liftbench/reference``).
"""
