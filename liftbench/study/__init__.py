"""The study stage: what to run, written once and planned into runs.

``model`` holds a study (grids and the leaderboard layout), ``toml_file`` writes it back as TOML, and
``plan`` resolves its names against the registry and expands it into the planned runs.
"""


def __getattr__(name: str):
    # liftbench.study was one module before 0.2: its names still resolve, with a DeprecationWarning.
    from liftbench.moved import forward

    return forward(__name__, "liftbench.study.toml_file" if name == "is_record" else "liftbench.study.model", name)
