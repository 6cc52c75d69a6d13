"""Bad inputs, each as a user or a plugin author meets it: the command, its exit status, its message (one
line, naming the bad value and what is allowed, no traceback) and what the results folder holds afterwards.

Records keep everything (an unreadable ``study.toml`` is set aside, never overwritten; a study file that is not
UTF-8 or has no ``[[grid]]``; the "run it again" command names the folder where it is, shell-quoted), output
hygiene (Markdown and LaTeX escape every string from results, file names made from names are safe, a folder
that cannot be written is a usage error) and plugin edges (a protocol flag sets only the protocols that
declare it as a flag; ``liftbench list plugins`` shows a name collision instead of stopping with it).

Tests run as root here, so a read-only folder cannot be made with ``chmod``: an unwritable place is a path
below a regular file (``file/sub``), and a read-only or full disk is an ``OSError`` raised by the writer.
"""

from __future__ import annotations

import errno
import re
import shlex
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from repo_root import ROOT
from site_results import tiny_results

from liftbench import hookimpl
from liftbench.cli import main
from liftbench.errors import ExitCode
from liftbench.plugin.options import Option
from liftbench.run.results import RUN_SUFFIX
from liftbench.study.model import STUDY_FILE, folder_study, read_study
from liftbench.study.plan import record

HOSTILE = r"ev/il<script>alert(1)</script>|*_\&%$#{x}~^`"  # a name from a plugin or a hand-edited result file



def one_line_error(err: str, *needles: str) -> str:
    """The error line of a usage error: one line, no traceback, holding every needle."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("liftbench: error:")]
    assert len(lines) == 1 and len(err.strip().splitlines()) == 1, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def listing(folder: Path) -> set[str]:
    """Every file and folder under ``folder``, relative to it."""
    return {p.relative_to(folder).as_posix() for p in Path(folder).rglob("*")} if Path(folder).exists() else set()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A finished tiny study (two backbones, two strategies, two seeds) with its ``study.toml``."""
    return tiny_results(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def hostile(tiny, tmp_path_factory):
    """The tiny study's result files with every dataset, backbone and strategy renamed to :data:`HOSTILE`
    variants, in a results root's study folder (``ROOT/hostile``) holding no study record."""
    root = tmp_path_factory.mktemp("hostile-root")
    out = root / "hostile"
    out.mkdir()
    for path in sorted(tiny.glob(f"*{RUN_SUFFIX}")):
        table = pq.read_table(path)
        for column, value in (("dataset", HOSTILE), ("strategy", None), ("backbone", None)):
            index = table.schema.get_field_index(column)
            old = table.column(column).to_pylist()
            new = [value or f"{v}{HOSTILE[2:]}" for v in old]
            table = table.set_column(index, column, pa.array(new))
        pq.write_table(table, out / path.name)
    return out


# ---------------------------------------------------------------------------------- A. records keep everything


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b'name = "x"\n[[grid]\n', "is not valid TOML"),
        (b'name = "caf\xe9"\n[[grid]]\n', "is not UTF-8"),
        (b'nmae = "x"\n[[grid]]\n', "unknown key 'nmae'"),
    ],
    ids=["corrupt-toml", "latin-1", "not-a-study"],
)
def test_an_unreadable_record_is_set_aside_with_a_warning_not_overwritten(tmp_path, capsys, content, why):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / STUDY_FILE).write_bytes(content)
    assert folder_study(folder)[0] is None and why in folder_study(folder)[2]  # read without raising
    study = read_study(tiny_study_file(tmp_path))
    record(study, folder)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("liftbench: warning:") and why in err[0] and "kept it as" in err[0]
    aside = [p for p in folder.iterdir() if p.name.startswith(f"{STUDY_FILE}.unreadable-")]
    assert len(aside) == 1 and aside[0].read_bytes() == content  # byte for byte, beside the new record
    assert re.fullmatch(r"study\.toml\.unreadable-\d{8}T\d{6}Z", aside[0].name)
    assert listing(folder) == {STUDY_FILE, aside[0].name}
    assert folder_study(folder)[0].grids == study.grids  # the new record reads back
    record(study, folder)  # a readable record is merged as before: nothing more set aside, no warning
    assert capsys.readouterr().err == "" and listing(folder) == {STUDY_FILE, aside[0].name}


def tiny_study_file(tmp_path: Path, grid: str = "[[grid]]\nbackbones = [\"vit-tiny-shapes\"]\nstrategies = [\"2d\"]\n",
                    body: bytes | None = None) -> Path:  # fmt: skip
    path = tmp_path / "mine.toml"
    path.write_bytes(body if body is not None else f'name = "mine"\nresults = "{tmp_path / "out"}"\n{grid}'.encode())
    return path


def test_a_run_into_a_folder_with_a_corrupt_record_keeps_it(tmp_path, capsys):
    """End to end: ``liftbench run`` into a folder whose ``study.toml`` is corrupt runs, warns once, and the
    folder then holds the runs, the new record and the old one set aside."""
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / STUDY_FILE).write_text('name = "lost grids"\n[[grid]\nseeds = 5\n', encoding="utf-8")
    args = ["run", "--datasets", "synthetic", "--backbones", "vit-tiny-shapes", "--strategies", "2d", "--size", "32",
            "--weights", "random", "--quick", "--iterations", "4", "--warmup", "1", "--no-leaderboard",
            "--dataset-opt", "n_train=9", "--dataset-opt", "n_val=6", "--dataset-opt", "n_test=6",
            "--results", str(folder)]  # fmt: skip
    assert main(args) == ExitCode.OK
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "is not valid TOML" in warnings[0] and str(folder / STUDY_FILE) in warnings[0]
    aside = sorted(p.name for p in folder.glob(f"{STUDY_FILE}.unreadable-*"))
    assert len(aside) == 1 and "lost grids" in (folder / aside[0]).read_text(encoding="utf-8")
    top = {p.name for p in folder.iterdir() if not p.name.startswith(".")}
    assert {STUDY_FILE, aside[0]} <= top and len([n for n in top if n.endswith(RUN_SUFFIX)]) == 1
    assert folder_study(folder)[0] is not None


def test_a_study_file_that_is_not_utf8_is_a_usage_error_naming_it(tmp_path, capsys):
    path = tiny_study_file(tmp_path, body='name = "caf\u00e9"\n[[grid]]\n'.encode("latin-1"))
    assert main(["run", "--study", str(path), "--dry-run"]) == ExitCode.USAGE
    one_line_error(capsys.readouterr().err, f"study file {str(path)!r} is not UTF-8", "byte 0xe9", "save it as UTF-8")
    assert not (tmp_path / "out").exists()


def test_a_study_with_no_grid_is_a_usage_error_not_a_default_grid(tmp_path, capsys):
    path = tiny_study_file(tmp_path, grid='[leaderboard]\nmetrics = ["auc"]\n')
    assert main(["run", "--study", str(path)]) == ExitCode.USAGE
    one_line_error(capsys.readouterr().err, f"study {path} has no [[grid]] table", "at least one")
    assert not (tmp_path / "out").exists()  # nothing ran, nothing recorded


def test_rerun_commands_name_the_folder_where_it_is_shell_quoted(tiny, tmp_path, capsys, monkeypatch):
    """After a copy to a folder whose name needs quoting, ``status`` and the site print a command that runs the
    study into that folder — not into the one recorded when it was made."""
    from liftbench.report.site import render_site

    moved = tmp_path / "copied results; rm -rf ~"
    shutil.copytree(tiny, moved)
    recorded = folder_study(moved)[0].results
    assert recorded == str(tiny)  # what the record says: the original place
    assert main(["status", str(moved)]) == ExitCode.OK
    out = capsys.readouterr().out
    command = f"liftbench run --study {shlex.quote(str(moved / STUDY_FILE))}"
    assert f"{command} runs it again" in out and f"--study {recorded}" not in out
    assert shlex.split(command)[-1] == str(moved / STUDY_FILE)  # pastes as one argument
    monkeypatch.chdir(tmp_path)  # the site names the folder from where it is rendered
    page = render_site([moved])[f"{re.sub('[^a-z0-9._-]+', '-', moved.name.lower()).strip('-.')}.html"].decode()
    quoted = shlex.quote(f"{moved.name}/{STUDY_FILE}")
    assert f"<pre>liftbench run --study {quoted.replace(chr(39), '&#x27;')}</pre>" in page
    assert str(tiny) not in page.split("<pre>liftbench run")[1].split("</pre>")[0]


# ------------------------------------------------------------------------------------------ B. output hygiene


def _cells(line: str) -> int:
    """Columns of a Markdown table row: pipes not escaped by a backslash."""
    return len(re.findall(r"(?<!\\)\|", line))


def test_markdown_escapes_every_string_from_results(hostile, capsys):
    assert main(["leaderboard", str(hostile), "--format", "md", "--no-reported"]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "<script>" not in out and r"\<script\>" in out
    for raw, escaped in (("|", r"\|"), ("*_", r"\*\_"), ("\\&", r"\\\&"), ("$#{x}", r"\$\#\{x\}"), ("`", r"\`")):
        assert escaped in out, raw
    rows = [line for line in out.splitlines() if line.startswith("|")]
    assert rows and len({_cells(line) for line in rows}) == 1  # a '|' in a name never adds a column


def test_latex_escapes_every_string_from_results(hostile, capsys):
    assert main(["leaderboard", str(hostile), "--format", "latex", "--no-reported"]) == ExitCode.OK
    out = capsys.readouterr().out
    escaped = (r"ev/il$<$script$>$alert(1)$<$/script$>$\textbar{}*\_\textbackslash{}\&\%\$\#\{x\}"
               r"\textasciitilde{}\textasciicircum{}`")  # fmt: skip
    assert escaped in out and "<script>" not in out
    for line in out.splitlines():  # no raw special left in a table line: every & is a column, every % a comment
        if line.endswith(r" \\"):
            assert "%" not in line.replace(r"\%", "") and "#" not in line.replace(r"\#", "")


def test_write_escapes_the_committed_table_and_names_plot_files_safely(hostile, tmp_path, capsys):
    root = tmp_path / "root"
    shutil.copytree(hostile, root / "hostile")
    assert main(["leaderboard", str(root), "--write"]) == ExitCode.OK
    text = (root / "hostile" / "leaderboard.md").read_text(encoding="utf-8")
    assert "<script>" not in text and r"\<script\>" in text
    plots = root / "hostile" / "plots"
    assert plots.is_dir() and all(p.is_file() and p.parent == plots for p in plots.rglob("*"))  # no ev/ subfolder
    names = sorted(p.name for p in plots.iterdir())
    assert names and all(re.fullmatch(r"[A-Za-z0-9._+-]+", n) for n in names)
    assert any(n.startswith("linear_ev-il-script-") and n.endswith(".svg") for n in names)
    assert main(["leaderboard", str(root), "--check"]) == ExitCode.OK  # what --write wrote is current
    capsys.readouterr()


def test_the_site_takes_a_dataset_name_with_a_slash(hostile, tmp_path, capsys):
    out = tmp_path / "site"
    assert main(["leaderboard", str(hostile), "--site", str(out)]) == ExitCode.OK
    files = listing(out)
    assert "hostile.html" in files and not any("ev/il" in f for f in files)
    assert all(re.fullmatch(r"[A-Za-z0-9._/+-]+", f) for f in files)
    page = (out / "hostile.html").read_text(encoding="utf-8")
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page  # the site's own script aside
    capsys.readouterr()


@pytest.mark.parametrize("flag", ["--out", "--site"])
def test_writing_below_a_file_is_a_usage_error_naming_the_path(tiny, tmp_path, capsys, flag):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    target = blocker / "sub" / ("board.md" if flag == "--out" else "site")
    assert main(["leaderboard", str(tiny), flag, str(target)]) == ExitCode.USAGE
    one_line_error(capsys.readouterr().err, "cannot write", str(blocker / "sub"), f"({flag})", "Not a directory",
                   "writable and has space")  # fmt: skip
    assert listing(tmp_path) == {"file"} and blocker.read_text(encoding="utf-8") == "not a folder"


@pytest.mark.parametrize(("flag", "code", "words"), [("--write", errno.EROFS, "Read-only file system"),
                                                     ("--out", errno.ENOSPC, "No space left on device"),
                                                     ("--site", errno.EROFS, "Read-only file system")])  # fmt: skip
def test_a_read_only_or_full_disk_is_a_usage_error_naming_the_path(tiny, tmp_path, capsys, monkeypatch, flag, code,
                                                                   words):  # fmt: skip
    import os

    from liftbench.run import results

    root = tmp_path / "root"
    shutil.copytree(tiny, root / "study")
    before = listing(root)

    def refuse(src, dst):
        raise OSError(code, os.strerror(code), str(src))

    monkeypatch.setattr(results.os, "replace", refuse)  # every atomic write ends in os.replace
    # (what is written, where the message must point)
    chosen = {"--write": ([], root / "leaderboard.md"), "--out": ([str(tmp_path / "board.md")], tmp_path / "board.md"),
              "--site": ([str(tmp_path / "site")], tmp_path / "site")}[flag]  # fmt: skip
    assert main(["leaderboard", str(root), flag, *chosen[0]]) == ExitCode.USAGE
    line = one_line_error(capsys.readouterr().err, "cannot write", f"({flag})", words)
    assert f"cannot write '{chosen[1]}" in line
    assert listing(root) == before  # nothing half-written: no temporary file left either
    assert not (tmp_path / "board.md").exists() and not any((tmp_path / "site").rglob("*.*"))


# ------------------------------------------------------------------------------------------- C. plugin edges


class FeatureBatchProtocol:
    """A plugin protocol declaring ``feature_batch`` as a flag (the built-ins declare it with ``flag=False``)."""

    @hookimpl
    def liftbench_register_protocols(self, registrar):
        registrar.add("fb-probe", "liftbench.protocols.linear:run", description="a plugin's probe",
                      options={"feature_batch": Option(int, 2, "volumes per forward", min=1),
                               "iterations": Option(int, 7, "steps", min=1)})  # fmt: skip


class Colliding:
    """Registers a strategy named ``dup`` (two of these under different names collide)."""

    @hookimpl
    def liftbench_register_strategies(self, registrar):
        registrar.add("dup", lifters={"vit": "liftbench.lifting.vit_slice2d:Slice2DViT"}, description="a copy")


@pytest.fixture
def install(monkeypatch):
    """Make in-process plugins visible to ``liftbench.cli.main`` as if installed (entry points)."""
    from liftbench.plugin import manager as plugins

    original = plugins._candidates

    def with_(*extra):
        monkeypatch.setattr(plugins, "_candidates", lambda more: original([*more, *extra]))

    return with_


def planned_options(args: list[str]) -> dict[str, dict]:
    """protocol -> its resolved options, as ``liftbench run ARGS`` would plan them."""
    from liftbench.cli import build_parser
    from liftbench.commands.run_study import study_from_args
    from liftbench.plugin.manager import build_registry
    from liftbench.study.plan import plan_study, resolve

    registry = build_registry()
    parsed = build_parser(registry).parse_args(["run", *args])
    study = resolve(study_from_args(parsed, registry)[0], registry)
    return {run.spec.protocol: run.spec.protocol_options for run in plan_study(study, registry)}


BASE = ["--datasets", "synthetic", "--backbones", "vit-tiny-shapes", "--strategies", "2d", "--results", "unused"]


def test_a_plugin_flag_sets_only_the_protocols_declaring_it_as_a_flag(install, capsys):
    install(("fb-plugin", FeatureBatchProtocol()))
    options = planned_options([*BASE, "--protocol", "linear,fb-probe", "--feature-batch", "8"])
    assert options["fb-probe"]["feature_batch"] == 8 and options["linear"]["feature_batch"] == 4  # built-in untouched
    # --opt is the one way to set every protocol of the grid that declares a name, flag or not
    options = planned_options([*BASE, "--protocol", "linear,fb-probe", "--opt", "feature_batch=8"])
    assert options["fb-probe"]["feature_batch"] == 8 and options["linear"]["feature_batch"] == 8
    # a name both declare as a flag stays one flag setting both (the help says whom it sets)
    options = planned_options([*BASE, "--protocol", "linear,fb-probe", "--iterations", "5", "--warmup", "1"])
    assert options["fb-probe"]["iterations"] == 5 and options["linear"]["iterations"] == 5
    # a grid where the flag sets nothing: a usage error naming its owner and the way to the others
    assert main(["run", *BASE, "--protocol", "linear", "--feature-batch", "8", "--dry-run"]) == ExitCode.USAGE
    one_line_error(capsys.readouterr().err, "--feature-batch sets 'feature_batch' of protocol(s) fb-probe only",
                   "this grid runs linear", "use --opt feature_batch=VALUE")  # fmt: skip


def test_without_the_plugin_its_flag_does_not_exist(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["run", *BASE, "--feature-batch", "8", "--dry-run"])
    assert stopped.value.code == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "unrecognized arguments: --feature-batch 8" in err and "Traceback" not in err


def test_list_plugins_shows_a_name_collision_other_commands_stop_naming_both(install, capsys):
    install(("first-plugin", Colliding()), ("second-plugin", Colliding()))
    assert main(["list", "plugins"]) == ExitCode.OK
    out = capsys.readouterr().out
    lines = {name: next(line for line in out.splitlines() if line.startswith(name + " "))
             for name in ("first-plugin", "second-plugin", "builtin-strategies")}  # fmt: skip
    clashed = [line for line in out.splitlines() if "name collision" in line]  # each error whole, under the table
    assert len(clashed) == 1 and "strategy name collision: 'dup'" in clashed[0] and "left out" in clashed[0]
    assert "'first-plugin'" in clashed[0] and "'second-plugin'" in clashed[0]  # both sides named
    assert clashed[0].split(":")[0] in ("first-plugin", "second-plugin")
    assert sum(line.rstrip().endswith("loaded") for line in lines.values()) == 2  # the other one, and the built-ins
    for args in (["list", "strategies"], ["run", "--strategies", "dup", "--dry-run"]):
        assert main(args) == ExitCode.USAGE
        one_line_error(capsys.readouterr().err, "strategy name collision: 'dup'", "first-plugin", "second-plugin",
                       "--disable-plugin", "liftbench list plugins")  # fmt: skip
    assert main(["list", "strategies", "--disable-plugin", "second-plugin"]) == ExitCode.OK  # the way out works
    assert "dup" in capsys.readouterr().out


def test_docs_state_the_flag_rule():
    text = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    assert "flag=False" in text and "--opt" in text and "list plugins" in text

