"""Command-line arguments the end-to-end tests share.

``TINY_SYNTHETIC``: the built-in synthetic set cut to 12 train, 6 validation and 6 test volumes of 32^3 — the
smallest data on which every classification protocol still has two classes in each split.
"""

TINY_SYNTHETIC = ["--size", "32", "--dataset-opt", "n_train=12", "--dataset-opt", "n_val=6", "--dataset-opt", "n_test=6"]
