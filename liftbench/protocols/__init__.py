"""Evaluation protocols: what a run measures once its backbone is lifted.

A protocol is ``run(ctx: RunContext) -> ProtocolResult``. The runner owns keys, resuming, timing,
provenance and writing; a protocol only computes metrics, reading the dataset, backbone and lifted
model through the :class:`RunContext`.
"""

from liftbench.protocols.context import ProtocolResult, RunContext, RunSpec

__all__ = ["ProtocolResult", "RunContext", "RunSpec"]
