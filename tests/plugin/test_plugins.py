"""Plugins: the third-party path end to end, the registry's rules, laziness, and every hook/entry covered.

Third-party plugins are exercised the way pip would install them, without touching the venv: a test
writes the ``.dist-info`` folder pip would write (``METADATA`` + ``entry_points.txt``) into a temporary
folder and runs ``python -m liftbench.cli`` in a subprocess with that folder (and the plugin's source)
on ``PYTHONPATH``.
"""

from __future__ import annotations

import importlib
import inspect
import os
import subprocess
import sys
from functools import lru_cache
from importlib.metadata import distribution, entry_points
from pathlib import Path

import pytest
from repo_root import EXAMPLE_PLUGIN, ROOT

from liftbench import hookimpl
from liftbench.cli import main
from liftbench.errors import UsageError
from liftbench.plugin import hookspecs
from liftbench.plugin.manager import DISABLE_ENV, build_registry
from liftbench.plugin.registry import KINDS, PLURAL, PluginError, Registry

EXAMPLE = EXAMPLE_PLUGIN
EXAMPLE_DIST = ("liftbench-example-plugin", "0.1.0", {"example": "liftbench_example.plugin"})
HOOKS = sorted(name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("liftbench_"))
BUILTIN_STRATEGIES = ["2d", "3d", "acs", "pcm", "pcg"]


# ------------------------------------------------------------------------------------------- helpers


def write_dist(folder: Path, name: str, version: str, eps: dict[str, str]) -> Path:
    """Write the ``.dist-info`` pip would install for a distribution with these ``liftbench`` entry points."""
    info = folder / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8")
    lines = "".join(f"{ep} = {target}\n" for ep, target in eps.items())
    (info / "entry_points.txt").write_text(f"[liftbench]\n{lines}", encoding="utf-8")
    return folder


def cli(*args: str, paths: list[Path] = (), cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m liftbench.cli ARGS`` with ``paths`` prepended to PYTHONPATH, run outside the checkout.

    Running in ``cwd`` (a temporary folder) keeps a stray ``liftbench.egg-info`` in the checkout from
    being read as metadata; liftbench itself comes from the venv's editable install.
    """
    env = {k: v for k, v in os.environ.items() if k != DISABLE_ENV}
    env["PYTHONPATH"] = os.pathsep.join([*map(str, paths), *filter(None, [os.environ.get("PYTHONPATH")])])
    return subprocess.run(
        [sys.executable, "-m", "liftbench.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def builtin_names() -> set[str]:
    """Entry-point names of liftbench's own distribution: the built-in plugins."""
    return {ep.name for ep in distribution("liftbench").entry_points if ep.group == "liftbench"}


def others() -> set[str]:
    """Installed entry points that are not built-in (disabled, so tests see only the built-ins)."""
    return {ep.name for ep in entry_points(group="liftbench")} - builtin_names()


@lru_cache(maxsize=1)
def builtin_registry() -> Registry:
    return build_registry(disabled=others())


@pytest.fixture(autouse=True)
def _no_env_disable(monkeypatch):
    monkeypatch.delenv(DISABLE_ENV, raising=False)


def builtin_registry_with(*extra: tuple[str, object], disabled=()) -> Registry:
    return build_registry(disabled={*others(), *disabled}, extra=list(extra))


class StrategyPlugin:
    """An in-process plugin adding one strategy (name and aliases chosen per test)."""

    def __init__(self, name: str, aliases=(), fail: bool = False) -> None:
        self.name, self.aliases, self.fail = name, aliases, fail

    @hookimpl
    def liftbench_register_strategies(self, registrar):
        if self.fail:
            raise RuntimeError("boom")
        registrar.add(self.name, lifters={"vit": "liftbench.lifting.vit_slice2d:Slice2DViT"}, aliases=self.aliases)


class EveryHookPlugin:
    """Implements every hook once, so each is shown to reach the registry from a plugin."""

    @hookimpl
    def liftbench_register_strategies(self, registrar):
        registrar.add("t-strategy", lifters={"cnn": "liftbench.lifting.cnn_slice2d:Slice2DCNN"})

    @hookimpl
    def liftbench_register_backbones(self, registrar):
        registrar.add("t-backbone", "liftbench.backbones.timm_backbones:create_timm_backbone", family="cnn", options={"model_name": "resnet18"})

    @hookimpl
    def liftbench_register_datasets(self, registrar):
        registrar.add("t-dataset", "liftbench.datasets.synthetic:load", sizes=(32,), has_masks=True)

    @hookimpl
    def liftbench_register_protocols(self, registrar):
        registrar.add("t-protocol", "liftbench.protocols.linear:run", needs_masks=False)

    @hookimpl
    def liftbench_register_executors(self, registrar):
        registrar.add("t-executor", "liftbench.run.executors.local:execute")

    @hookimpl
    def liftbench_register_studies(self, registrar):
        registrar.add("t-study", "liftbench:studies/demo.toml")


# ------------------------------------------------------------------------- the third-party example


def test_example_pyproject_matches_the_dist_info_the_tests_write():
    import tomllib
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    name, version, eps = EXAMPLE_DIST
    assert (project["name"], project["version"]) == (name, version)
    assert project["entry-points"]["liftbench"] == eps
    assert "liftbench" in project["dependencies"]


def test_example_dataset_is_deterministic_binary_with_masks(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    from liftbench_example.spheres import load

    data = load(16, seed=3)
    assert (data.task, data.num_classes, data.has_masks) == ("binary-class", 2, True)
    assert {s: len(split) for s, split in data.splits.items()} == {"train": 24, "val": 12, "test": 12}
    train = data.splits["train"]
    assert train.volumes.shape == (24, 1, 16, 16, 16) and train.volumes.dtype.name == "uint8"
    assert sorted(set(train.labels.tolist())) == [0, 1]
    again = load(16, seed=3).splits["train"]
    assert (again.volumes == train.volumes).all() and (again.labels == train.labels).all()
    assert not (load(16, seed=4).splits["train"].volumes == train.volumes).all()
    small = train.masks[train.labels == 0].reshape(-1, 16**3).sum(1)
    large = train.masks[train.labels == 1].reshape(-1, 16**3).sum(1)
    assert small.max() < large.min()
    with pytest.raises(UsageError, match="size >= 16"):
        load(8)


def test_example_mip_lifters_give_one_vector_per_volume(monkeypatch):
    import timm
    import torch

    from liftbench.errors import CannotLiftError

    monkeypatch.syspath_prepend(str(EXAMPLE))
    registry = builtin_registry_with(("example", importlib.import_module("liftbench_example.plugin")))
    entry = registry.get("strategy", "max-projection")
    assert entry.name == "mip" and entry.families == ("vit", "cnn")
    torch.manual_seed(0)
    volumes = torch.rand(2, 1, 16, 32, 32)
    vit = timm.create_model("vit_small_patch16_dinov3", pretrained=False).eval()
    features = entry.load("vit")(vit)(volumes)
    assert features.pooled.shape == (2, vit.embed_dim) and features.patches.shape == (2, vit.embed_dim, 1, 2, 2)
    cnn = timm.create_model("resnet18", pretrained=False).eval()
    features = entry.load("cnn")(cnn)(volumes)
    assert features.pooled.shape == (2, 512) and features.patches.shape == (2, 512, 1, 1, 1)
    fixed = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32)
    with pytest.raises(CannotLiftError, match="dynamic_img_size"):
        entry.load("vit")(fixed)


def test_third_party_plugin_lists_and_runs(tmp_path):
    name, version, eps = EXAMPLE_DIST
    site = write_dist(tmp_path / "site", name, version, eps)
    paths = [site, EXAMPLE]

    listed = cli("list", "strategies", paths=paths, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.startswith("mip "))
    assert row.rstrip().endswith(" example")
    detail = cli("list", "strategies", "mip", paths=paths, cwd=tmp_path)
    assert "plugin: example (liftbench-example-plugin 0.1.0)" in detail.stdout, detail.stderr
    studies = cli("list", "studies", paths=paths, cwd=tmp_path)  # its study file, read from the package's data
    row = next(line for line in studies.stdout.splitlines() if line.startswith("spheres-mip "))
    assert " 6 " in row, studies.stdout + studies.stderr
    study = cli("list", "studies", "spheres-mip", paths=paths, cwd=tmp_path).stdout
    assert "runs: 6" in study and "protocol nearest-centroid; auc,acc; baseline 2d" in " ".join(study.split()), study

    results, cache = tmp_path / "results", tmp_path / "cache"
    done = cli(
        "run", "--datasets", "tiny-spheres", "--size", "32", "--backbones", "vits", "--weights", "random",
        "--strategies", "mip,pcg", "--quick", "--seeds", "1", "--results", str(results), "--cache-dir", str(cache),
        "--opt", "feature_batch=24",  # PlaneCycle on CPU: a few large batches run about twice as fast as many small ones
        paths=paths, cwd=tmp_path, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(list(results.glob("*.parquet"))) == 2  # one file per run

    from liftbench.run.results import read_results

    frame = read_results(results).frame
    assert set(frame["strategy"]) == {"mip", "pcg"}
    assert set(frame["status"]) == {"ok"}
    for strategy, rows in frame.groupby("strategy"):
        test = rows[rows["split"] == "test"]
        assert {"auc", "acc"} <= set(test["metric"]), strategy
        assert test["value"].between(0, 1).all()
        assert set(rows["dataset"]) == {"tiny-spheres"} and set(rows["weights"]) == {"random:0"}


# ----------------------------------------------------------------------------- resolution, messages


def test_every_hook_reaches_the_registry_from_a_plugin():
    registry = builtin_registry_with(("every", EveryHookPlugin()))
    for kind in KINDS:
        entry = registry.get(kind, f"t-{kind}")
        assert entry.plugin == "every"
    assert registry.plugins["every"].distribution == "in-process"


def test_resolve_aliases_globs_all_and_order():
    registry = builtin_registry_with(("mine", StrategyPlugin("mine", aliases=("my-way",))))
    names = lambda text: [e.name for e in registry.resolve("strategy", text)]  # noqa: E731
    assert names("pcg,3d") == ["pcg", "3d"]  # the user's order
    assert names("planecycle, I3D, my-way") == ["pcg", "3d", "mine"]  # aliases, case-insensitive
    assert names("pc*") == ["pcm", "pcg"]  # registration order within a pattern
    assert names("pcg,pc*") == ["pcg", "pcm"]  # duplicates go
    assert names("planecycle-*") == ["pcm", "pcg"]  # globs match aliases too
    assert names("all") == [*BUILTIN_STRATEGIES, "mine"]  # built-ins (entry points) first, then extras
    assert names(["acs", "all"]) == ["acs", "2d", "3d", "pcm", "pcg", "mine"]
    with pytest.raises(UsageError, match=r"no strategy matches 'zz\*'; available: 2d, 3d"):
        registry.resolve("strategy", "zz*")
    with pytest.raises(UsageError, match="no strategy given"):
        registry.resolve("strategy", " , ")


def test_unknown_name_suggests_and_lists():
    registry = builtin_registry()
    with pytest.raises(UsageError) as excinfo:
        registry.resolve("strategy", "pcg,pgc")
    assert str(excinfo.value) == "unknown strategy 'pgc'; did you mean 'pcg'? available: 2d, 3d, acs, pcm, pcg"
    with pytest.raises(UsageError) as excinfo:
        registry.get("strategy", "xyz")
    assert str(excinfo.value) == "unknown strategy 'xyz'; available: 2d, 3d, acs, pcm, pcg"


@pytest.mark.parametrize(
    ("plugins", "both"),
    [
        ([("first", StrategyPlugin("mine")), ("second", StrategyPlugin("mine"))], ("'first'", "'second'")),
        ([("sneaky", StrategyPlugin("other", aliases=("PCG",)))], ("'builtin-strategies'", "'sneaky'")),
    ],
    ids=["name", "alias-vs-builtin"],
)
def test_collision_is_an_error_naming_both_plugins(plugins, both):
    with pytest.raises(PluginError, match="name collision") as excinfo:
        builtin_registry_with(*plugins)
    for plugin in both:
        assert plugin in str(excinfo.value)


def test_a_raising_hook_is_reported_and_others_register():
    registry = builtin_registry_with(("broken", StrategyPlugin("bad", fail=True)), ("good", StrategyPlugin("good")))
    assert "plugin 'broken' failed to register strategies: RuntimeError: boom" in registry.plugins["broken"].error
    assert registry.names("strategy") == [*BUILTIN_STRATEGIES, "good"]
    assert registry.names("backbone")  # other kinds unaffected


# -------------------------------------------------------------------------------------------- disabling


def test_disable_by_argument():
    registry = builtin_registry_with(("mine", StrategyPlugin("mine")), disabled=["builtin-strategies", "mine"])
    assert registry.entries("strategy") == []
    assert registry.plugins["builtin-strategies"].error == "disabled"
    assert registry.plugins["mine"].error == "disabled"
    assert registry.names("backbone")


def test_disable_by_environment(monkeypatch):
    monkeypatch.setenv(DISABLE_ENV, "builtin-strategies, builtin-backbones, builtin-shapes-backbones")
    registry = builtin_registry_with()
    assert registry.entries("strategy") == [] and registry.entries("backbone") == []
    assert registry.names("dataset")


def test_disable_by_cli_flag(capsys, tmp_path):
    flags = [arg for name in sorted(others()) for arg in ("--disable-plugin", name)]
    assert main([*flags, "--disable-plugin", "builtin-strategies", "list", "strategies"]) == 0
    out = capsys.readouterr().out
    assert "(none)" in out and "pcg" not in out
    status = main([
        *flags, "--disable-plugin", "builtin-strategies", "run", "--strategies", "pcg", "--weights", "random",
        "--size", "32", "--results", str(tmp_path / "results"), "--cache-dir", str(tmp_path / "cache"),
    ])
    assert status == 2
    assert "unknown strategy 'pcg'; available: (none registered)" in capsys.readouterr().err


# ------------------------------------------------------------------------------- broken entry points


def test_plugin_that_fails_to_import_is_reported_by_name(tmp_path):
    site = write_dist(tmp_path / "site", "liftbench-broken", "1.0", {"x": "liftbench_no_such_module.plugin"})
    plugins = cli("list", "plugins", paths=[site], cwd=tmp_path)
    assert plugins.returncode == 0, plugins.stderr
    assert "Error importing plugin 'x': ModuleNotFoundError" in plugins.stdout
    strategies = cli("list", "strategies", paths=[site], cwd=tmp_path)
    assert strategies.returncode == 0 and "pcg" in strategies.stdout


def test_duplicate_entry_point_names_are_reported(tmp_path):
    first = write_dist(tmp_path / "a", "liftbench-twin-a", "1.0", {"twin": "liftbench_example.plugin"})
    second = write_dist(tmp_path / "b", "liftbench-twin-b", "2.0", {"twin": "liftbench_example.plugin"})
    listed = cli("list", paths=[first, second, EXAMPLE], cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    message = "entry point name 'twin' is provided by both liftbench-twin-a and liftbench-twin-b"
    assert message in listed.stdout
    assert sum(line.startswith("mip ") for line in listed.stdout.splitlines()) == 1  # loaded once, from the first


# ------------------------------------------------------------------------------------------ laziness


def test_building_the_registry_imports_nothing_heavy(tmp_path):
    heavy = ["liftbench.lifting.vit_planecycle", "liftbench.datasets.synthetic", "liftbench.protocols.linear", "timm"]
    code = (
        "import sys; from liftbench.plugin.manager import build_registry; r = build_registry(); "
        "assert r.names('strategy') and r.names('dataset'); "
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    env = {k: v for k, v in os.environ.items() if k != DISABLE_ENV}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# ------------------------------------------------------------------------------------------ hooks


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_builtin_implementation(hook):
    eps = [ep for ep in distribution("liftbench").entry_points if ep.group == "liftbench"]
    assert any(hasattr(ep.load(), hook) for ep in eps), f"no built-in plugin implements {hook}"


def test_hooks_and_kinds_agree():
    assert HOOKS == sorted(f"liftbench_register_{PLURAL[kind]}" for kind in KINDS)


# ------------------------------------------------------------------ every registered entry (timm style)


def _entries():
    return [pytest.param(e, id=f"{e.kind}-{e.name}") for kind in KINDS for e in builtin_registry().entries(kind)]


@pytest.mark.parametrize("entry", _entries())
def test_every_registered_entry_loads(entry):
    assert entry.description, f"{entry.kind} {entry.name!r} has no description for `liftbench list`"
    if entry.kind == "strategy":
        assert entry.families and set(entry.families) <= {"vit", "cnn"}
        for family in entry.families:
            assert callable(entry.load(family)), (entry.name, family)
        return
    if entry.kind == "study":
        from liftbench.study.model import Study

        assert isinstance(entry.load(), Study) and entry.load().name == entry.name
        return
    assert callable(entry.load())
    if entry.kind == "backbone":
        assert entry.family in ("vit", "cnn") and entry.architecture
        if entry.target == "liftbench.backbones.timm_backbones:create_timm_backbone":
            import timm

            name = entry.options["model_name"]  # an architecture, or architecture.tag for one set of weights
            assert name.partition(".")[0] in _timm_models(timm), name
            assert "." not in name or name in timm.list_pretrained(name), name


@lru_cache(maxsize=1)
def _timm_models(timm) -> frozenset[str]:
    return frozenset(timm.list_models())


# ------------------------------------------------------------------------ pluggy as designed, typed


class MisspeltHook:
    @hookimpl
    def liftbench_register_strategy(self, registrar):  # sic: the hook is liftbench_register_strategies
        registrar.add("never", lifters={"vit": "liftbench.lifting.vit_slice2d:Slice2DViT"})


def test_a_misspelt_hook_is_reported_with_the_real_name_and_others_load():
    registry = builtin_registry_with(("typo", MisspeltHook()), ("good", StrategyPlugin("good")))
    error = registry.plugins["typo"].error
    assert "unknown hook 'liftbench_register_strategy'" in error and "did you mean 'liftbench_register_strategies'" in error
    assert "never" not in registry.names("strategy") and "good" in registry.names("strategy")


class Wrapper:
    """A hook wrapper, as a tracing or monitoring plugin would add: it must see every registrar call."""

    seen: list

    def __init__(self) -> None:
        self.seen = []

    @hookimpl(wrapper=True)
    def liftbench_register_strategies(self, registrar):
        self.seen.append("before")
        result = yield
        self.seen.append("after")
        return result


def test_hooks_are_called_through_the_plugin_manager_so_wrappers_see_them():
    wrapper = Wrapper()
    registry = builtin_registry_with(("wrapper", wrapper), ("good", StrategyPlugin("good")))
    assert wrapper.seen == ["before", "after"] and "good" in registry.names("strategy")
    calls = []
    undo = registry.plugin_manager.add_hookcall_monitoring(lambda name, impls, kwargs: calls.append(name), lambda *a: None)
    registry.plugin_manager.hook.liftbench_register_backbones(registrar=Registry().registrar("backbone", "x"))
    undo()
    assert calls == ["liftbench_register_backbones"]


def test_disabling_an_unknown_plugin_is_an_error_with_a_suggestion(capsys):
    assert main(["--disable-plugin", "builtin-strategis", "list", "strategies"]) == 2
    assert "no such plugin; did you mean 'builtin-strategies'?" in capsys.readouterr().err


def test_an_unknown_name_in_the_environment_is_only_a_warning(monkeypatch, capsys):
    monkeypatch.setenv(DISABLE_ENV, "not-installed-here")
    assert "pcg" in builtin_registry_with().names("strategy")
    assert "cannot disable plugin 'not-installed-here'" in capsys.readouterr().err


def test_the_plugin_the_cli_needs_cannot_be_disabled(capsys):
    assert main(["--disable-plugin", "builtin-executors", "list"]) == 2
    assert "plugin 'builtin-executors' cannot be disabled" in capsys.readouterr().err


def test_builtins_load_without_entry_point_metadata(monkeypatch):
    """A plain source checkout has no installed metadata: the built-ins still load, from their own list."""
    import liftbench.plugin.manager as plugins_module

    monkeypatch.setattr(plugins_module, "entry_points", lambda group: [])
    registry = plugins_module.build_registry()
    assert {"2d", "pcg"} <= set(registry.names("strategy")) and "local" in registry.names("executor")
    assert registry.get("strategy", "pcg").distribution == "liftbench"


class WrongTargets:
    @hookimpl
    def liftbench_register_protocols(self, registrar):
        registrar.add("not-callable", "liftbench:__version__")

    @hookimpl
    def liftbench_register_strategies(self, registrar):
        registrar.add("not-a-lifter", lifters={"vit": "liftbench.run.results:ResultsFolder"})


def test_a_target_of_the_wrong_kind_fails_on_load_naming_plugin_and_target():
    registry = builtin_registry_with(("wrong", WrongTargets()))
    with pytest.raises(PluginError, match=r"protocol 'not-callable' from plugin 'wrong'.*liftbench:__version__.*expected a callable"):
        registry.get("protocol", "not-callable").load()
    with pytest.raises(PluginError, match=r"strategy 'not-a-lifter'.*ResultsFolder.*Lifted subclass"):
        registry.get("strategy", "not-a-lifter").load("vit")


def test_undeclared_protocol_option_objects_are_refused_at_registration():
    class Bad:
        @hookimpl
        def liftbench_register_protocols(self, registrar):
            registrar.add("raw", "liftbench.protocols.linear:run", options={"k": 3})

    with pytest.raises(PluginError, match=r"protocol 'raw': option 'k' must be declared as liftbench.Option"):
        builtin_registry_with(("bad", Bad()))


def test_a_lifter_breaking_the_return_contract_is_named():
    import timm
    import torch

    from liftbench.api import lift_with
    from liftbench.lifting.base import Lifted

    class ReturnsTensor(Lifted):
        def forward(self, volumes):
            return volumes.mean()

    model = timm.create_model("resnet10t", pretrained=False)
    with pytest.raises(PluginError, match=r"lifter .*ReturnsTensor .*returned Tensor.*Features\(pooled, patches\)"):
        ReturnsTensor(model)(torch.zeros(1, 3, 4, 16, 16))

    class Returner:
        @hookimpl
        def liftbench_register_strategies(self, registrar):
            registrar.add("returns-model", lifters={"cnn": "torch.nn:Identity"})

    registry = builtin_registry_with(("returner", Returner()))
    with pytest.raises(PluginError, match=r"strategy 'returns-model' from plugin 'returner'.*Identity"):
        lift_with(registry, model, "returns-model")


def test_run_help_lists_plugin_options_grouped_by_plugin(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert "protocol options (plugin builtin-protocols)" in out and "--threshold" in out
    assert "slurm executor (--executor slurm) (plugin builtin-executors)" in out and "--slurm-partition" in out


def test_an_executor_flag_for_another_executor_is_a_usage_error(tmp_path, capsys):
    assert main(["run", "--slurm-partition", "gpu", "--strategies", "2d", "--results", str(tmp_path)]) == 2
    assert "--slurm-partition applies to --executor slurm, not 'local'" in capsys.readouterr().err


def test_a_plugin_version_is_part_of_the_run_key_and_recorded(monkeypatch):
    from liftbench.study.grid_runs import plan

    def keys(version: str):
        registry = builtin_registry_with(("mine", StrategyPlugin("mine")))
        registry.plugins["mine"].version = version
        registry._entries["strategy"]["mine"] = type(registry.get("strategy", "mine"))(
            **{**registry.get("strategy", "mine").__dict__, "version": version}
        )
        runs = plan(registry, datasets=registry.resolve("dataset", "synthetic"), backbones=registry.resolve("backbone", "vits"),
                    strategies=registry.resolve("strategy", "mine"), protocols=registry.resolve("protocol", "linear"),
                    seeds=[0], size=32, weights="random")  # fmt: skip
        return runs[0].key, runs[0].spec.providers

    (key1, providers1), (key2, providers2) = keys("1.0"), keys("2.0")
    assert key1 != key2 and "mine (in-process 1.0)" in providers1 and "2.0" in providers2


def test_version_and_exit_codes(capsys):
    from liftbench.errors import ExitCode

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.startswith("liftbench 0.")
    assert main(["run", "--strategies", "pgc"]) == ExitCode.USAGE == 2


def test_the_builtin_list_is_exactly_the_entry_points_pyproject_declares():
    """``liftbench_plugins.BUILTINS`` (used by a bare source checkout) and ``pyproject.toml``'s entry points are
    two spellings of one list: a plugin added to one and not the other fails here."""
    import tomllib
    from liftbench_plugins import BUILTINS

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert declared["project"]["entry-points"]["liftbench"] == BUILTINS
