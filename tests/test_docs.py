"""The documentation: the site builds in strict mode with its API reference, and the README fits on a screen.

``mkdocs build --strict`` turns every warning into a failure: a link to a missing page, an anchor no heading
makes (``validation.anchors: warn`` in ``mkdocs.yml``) and a ``::: liftbench.x.Y`` reference mkdocstrings cannot
resolve, which is how a renamed or moved type shows up here. The second test breaks a page each of those ways
and checks the same build fails, naming the culprit, so a passing build means something.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import mkdocs  # noqa: F401  (a test dependency: `pip install -e '.[test]'`)
import mkdocstrings  # noqa: F401
import pytest
import yaml
from repo_root import ROOT

README_MAX_WORDS = 1500

# Every type and function a plugin touches, with the reference page that must render it.
REFERENCED = {
    "lifting": ["liftbench.lift", "liftbench.api.lifted_features", "liftbench.lifting.base.Lifted",
                "liftbench.lifting.base.check_options", "liftbench.lifting.features.Features"],
    "data": ["liftbench.datasets.volumes.VolumeDataset", "liftbench.datasets.volumes.VolumeSplit"],
    "protocols": ["liftbench.run.context.RunContext", "liftbench.run.context.ProtocolResult",
                  "liftbench.metrics.classification_metrics"],
    "options": ["liftbench.plugin.options.Option"],
    "errors": ["liftbench.errors", "liftbench.errors.UsageError", "liftbench.errors.CannotLiftError",
               "liftbench.errors.PluginError", "liftbench.errors.MissingFileError"],
    "hookspecs": ["liftbench.plugin.hookspecs", "liftbench.plugin.hookspecs.liftbench_register_strategies",
                  "liftbench.plugin.hookspecs.liftbench_register_protocols"],
    "testing": ["liftbench.testing", "liftbench.testing.registry_with", "liftbench.testing.run_grid"],
}  # fmt: skip


def build(config: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config),
                           "--site-dir", str(site)], capture_output=True, text=True, cwd=ROOT, timeout=300)  # fmt: skip


def test_site_builds_strictly_with_the_api_reference(tmp_path):
    done = build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert done.returncode == 0, done.stdout + done.stderr
    for page, names in REFERENCED.items():
        html = (tmp_path / "site" / "reference" / f"{page}.html").read_text(encoding="utf-8")
        for name in names:
            assert f'id="{name}"' in html, f"reference/{page}.md renders no {name}"
    fields = (tmp_path / "site" / "reference" / "data.html").read_text(encoding="utf-8")
    for field in ("volumes", "labels", "masks", "num_classes", "splits"):  # dataclass fields, documented
        assert f'id="liftbench.datasets.volumes.Volume{"Dataset" if field in ("num_classes", "splits") else "Split"}.{field}"' in fields


def _one_page_site(tmp_path: Path, page: str) -> Path:
    """A site of ``page`` alone, built with the real configuration (plugins, handlers, validation)."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    config.pop("nav")
    config["docs_dir"] = str(tmp_path / "docs")
    config["hooks"] = [str(ROOT / h) for h in config.get("hooks", [])]
    config["plugins"][2]["mkdocstrings"]["handlers"]["python"]["paths"] = [str(ROOT)]
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text("# Home\n\n## Known heading\n\n" + page, encoding="utf-8")
    path = tmp_path / "mkdocs.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("page", "culprit"),
    [
        # the control: the same build of a sound page (a good anchor, a good reference) passes
        ("See [below](#known-heading).\n\n::: liftbench.datasets.volumes.VolumeSplit\n", None),
        ("See [the guide](no-such-page.md).\n", "no-such-page.md"),
        ("See [below](#no-such-heading).\n", "no-such-heading"),
        ("::: liftbench.datasets.volumes.NoSuchType\n", "liftbench.datasets.volumes.NoSuchType"),
    ],
    ids=["sound-page", "broken-link", "broken-anchor", "missing-reference"],
)
def test_a_broken_link_anchor_or_reference_fails_the_build(tmp_path, page, culprit):
    done = build(_one_page_site(tmp_path, page), tmp_path / "site")
    if culprit is None:
        assert done.returncode == 0, done.stdout + done.stderr
    else:
        assert done.returncode != 0
        assert culprit in done.stdout + done.stderr


def test_readme_fits_on_a_screen_and_points_only_into_the_repository():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    words = len(readme.split())
    assert words <= README_MAX_WORDS, f"README.md has {words} words (at most {README_MAX_WORDS}): move detail to docs/"
    texts = {"README.md": readme} | {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8") for p in (ROOT / "docs").rglob("*.md")}
    for name, text in texts.items():
        base = (ROOT / name).parent
        for path in re.findall(r"(?:\.\./)+[\w.-]*", text):  # any parent-relative path, linked or in prose
            resolved = (base / path).resolve()
            assert resolved == ROOT or ROOT in resolved.parents, f"{name} points outside the repository: {path}"
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if re.match(r"[a-z]+://", target):
                continue
            resolved = (base / target).resolve()
            assert resolved.is_relative_to(ROOT), f"{name} links outside the repository: {target}"
            assert resolved.exists(), f"{name} links to a missing file: {target}"
