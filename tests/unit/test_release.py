"""`make release-check` (tools/release/check.py): the version checks that need no tools."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from support.tools import load_tool

ROOT = Path(__file__).resolve().parents[2]


check = load_tool("release/check.py")
VERSION = check.package_version()
HEAD = "0123456789abcdef0123456789abcdef01234567"


def test_the_repository_agrees_on_one_version() -> None:
    assert check.version_problems() == []


def test_a_bumped_package_version_names_every_place_left_behind(tmp_path: Path) -> None:
    for path in [ROOT / "pyproject.toml", *check.MENTIONS, *(check.CHART).glob("*.yaml")]:
        target = tmp_path / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    pyproject = tmp_path / "pyproject.toml"
    bumped = pyproject.read_text().replace(f'version = "{VERSION}"', 'version = "9.9.9"')
    pyproject.write_text(bumped)
    problems = "\n".join(check.version_problems(tmp_path))
    assert "Chart.yaml version" in problems
    assert "Chart.yaml appVersion" in problems
    assert "images/operator/Dockerfile:" in problems
    assert "docs/install.md:" in problems
    assert "manifests/install.yaml:" in problems


def _sbom(tmp_path: Path, version: str) -> Path:
    path = tmp_path / "sbom.cdx.json"
    root = {"type": "application", "name": "gptoss-operator", "version": version}
    kopf = {"type": "library", "name": "kopf", "version": "1.45.2"}
    bom = {"bomFormat": "CycloneDX", "metadata": {"component": root}, "components": [kopf]}
    path.write_text(json.dumps(bom))
    return path


def test_an_image_of_this_commit_and_version_passes(tmp_path: Path) -> None:
    env = {"IMAGE": f"localhost/gptoss-operator:{VERSION}"}
    labels = {check.LABEL + "version": VERSION, check.LABEL + "revision": HEAD}
    assert check.image_problems(env, labels, HEAD, _sbom(tmp_path, VERSION)) == []


def test_a_stale_or_mislabelled_image_fails(tmp_path: Path) -> None:
    env = {"IMAGE": "localhost/gptoss-operator:0.0.1"}
    labels = {check.LABEL + "version": "0.0.1", check.LABEL + "revision": HEAD + "-dirty"}
    problems = "\n".join(check.image_problems(env, labels, HEAD, _sbom(tmp_path, "0.0.1")))
    assert "is not tagged" in problems
    assert "image label version" in problems
    assert "is not HEAD" in problems
    assert "does not describe gptoss-operator" in problems
    missing = check.image_problems(env, labels, HEAD, tmp_path / "absent.json")
    assert any("no SBOM" in p for p in missing)
