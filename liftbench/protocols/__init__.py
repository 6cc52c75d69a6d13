"""Evaluation protocols: what a run measures once its backbone is lifted.

A protocol is ``run(ctx: RunContext) -> ProtocolResult`` (both in :mod:`liftbench.run.context`, importable
from the package root). The runner owns keys, resuming, timing, provenance and writing; a protocol only
computes metrics, reading the dataset, backbone and lifted model through the :class:`RunContext`.
"""


def __getattr__(name: str):
    # liftbench.protocols handed on RunContext, ProtocolResult and RunSpec before 0.2: still, with a warning.
    from liftbench.moved import forward

    return forward(__name__, "liftbench.run.context", name)
