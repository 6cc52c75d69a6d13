"""Devices: the one check that a device name is well formed and the one check that it exists here.

Well formed is checked wherever a device enters (a flag, a study file); *present* is checked before anything runs
in this process — the local executor, ``liftbench bench``, a dry run's estimate — since a missing GPU would
otherwise surface as a torch error inside every run (a study for a GPU cluster is planned on a login node: a
remote executor checks on the node that runs it).
"""

from __future__ import annotations

import re

from liftbench.errors import UsageError

DEVICE = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")
VALID = "cpu, cuda, cuda:N (a GPU's index), mps"


def device_of(value: str, where: str) -> str:
    """A device torch understands: ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` — checked here, since a typo would
    otherwise surface as torch's traceback only once the first run starts."""
    if not isinstance(value, str) or not DEVICE.match(value):
        raise UsageError(f"{where}: invalid device {value!r}; valid: {VALID}")
    return value


def available() -> list[str]:
    """The devices of this machine, as ``device_of`` spells them."""
    import torch

    found = ["cpu"]
    if torch.cuda.is_available():
        found += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        found.append("mps")
    return found


def is_present(device: str) -> bool:
    """Whether the (well formed) ``device`` exists on this machine."""
    return device in available()


def require_present(device: str, where: str) -> str:
    """``device``, checked well formed and present here; else a usage error naming what this machine has."""
    device_of(device, where)
    if not is_present(device):
        raise UsageError(f"{where}: device {device!r} is not available on this machine; available here: "
                         f"{', '.join(available())}")  # fmt: skip
    return device
