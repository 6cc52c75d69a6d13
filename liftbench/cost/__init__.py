"""The cost stage: what a run costs, estimated before it runs (``estimate*``) or measured (``bench``)."""
