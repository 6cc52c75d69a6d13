"""Where a dataset that liftbench cannot download lives on disk: ``<data root>/<its folder>``.

Why a shared helper: LIDC and MMWHS are hand-downloaded releases with no package of their own (unlike
MedMNIST, whose package knows a default folder), so there is no sensible default. The data root is
``--data-root`` (passed to ``load`` as ``data_root``) or ``$LIFTBENCH_DATA_ROOT``, the same two places the
MedMNIST loader looks; with neither set, the error says which folder the dataset would be read from.
"""

from __future__ import annotations

import os
from pathlib import Path

from liftbench.errors import MissingFileError

ENV_ROOT = "LIFTBENCH_DATA_ROOT"


def dataset_folder(data_root: str | os.PathLike | None, subfolder: str, what: str) -> Path:
    """``<data root>/<subfolder>`` as an absolute path.

    ``what`` is one sentence naming the dataset, its layout and where the release comes from; it ends the
    error raised when no data root is given at all.
    """
    root = data_root or os.environ.get(ENV_ROOT)
    if not root:
        raise MissingFileError(
            f"no data folder given: pass --data-root DIR or set {ENV_ROOT}=DIR; the data is then read from "
            f"DIR/{subfolder}/. {what}"
        )
    return (Path(root).expanduser() / subfolder).resolve()
