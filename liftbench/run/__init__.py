"""The run stage: computing planned runs and writing their results.

``spec`` is a run's key, ``context`` what a protocol sees, ``runner`` executes runs (resuming, timing,
provenance), ``results`` is the one write rule and the Parquet schema, ``inputs`` the identity of data and
weights by content, ``feature_cache`` the on-disk cache of frozen features, ``executors`` where runs execute.
"""
