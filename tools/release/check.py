"""`make release-check`: the package, the chart and the image tell one version, and the chart
packages cleanly. Exits 1 with one line per disagreement.

    pyproject.toml version  ==  Chart.yaml version and appVersion  ==  the chart's image tag
                            ==  every `gptoss-operator:X.Y.Z` the docs and install.yaml mention
    the built image (dist/image.env, `make image`): tag, version label, revision label == HEAD,
                            and an SBOM of gptoss-operator at that version
    `helm package` of the chart: `helm lint --strict` passes on the .tgz, its appVersion agrees

The version checks run without tools (tests/unit/test_release.py runs them); the image and the
package checks need podman or docker, and helm (the test bed's cached build).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "gptoss-operator"
DIST = ROOT / "dist"
LABEL = "org.opencontainers.image."
# Where an image reference with a version appears in text a user copies from.
MENTIONS = [
    ROOT / "README.md",
    ROOT / "images" / "operator" / "Dockerfile",
    ROOT / "manifests" / "install.yaml",
    *sorted((ROOT / "docs").glob("*.md")),
]
_MENTION = re.compile(r"gptoss-operator:v?(\d+\.\d+\.\d+[^\s`\"']*)")


def package_version(root: Path = ROOT) -> str:
    with (root / "pyproject.toml").open("rb") as f:
        return str(tomllib.load(f)["project"]["version"])


def version_problems(root: Path = ROOT) -> list[str]:
    """Where the chart or the docs disagree with the package version."""
    version = package_version(root)
    chart = yaml.safe_load((root / "charts" / "gptoss-operator" / "Chart.yaml").read_text())
    values = yaml.safe_load((root / "charts" / "gptoss-operator" / "values.yaml").read_text())
    problems = [
        f"Chart.yaml {key} {chart[key]!r} != package version {version!r}"
        for key in ("version", "appVersion")
        if str(chart[key]) != version
    ]
    if values["image"]["tag"] not in ("", version):
        problems.append(f"values.yaml image.tag {values['image']['tag']!r} != {version!r}")
    for path in MENTIONS:
        text = (root / path.relative_to(ROOT)).read_text()
        for match in _MENTION.finditer(text):
            if match[1] != version:
                line = text.count("\n", 0, match.start()) + 1
                problems.append(f"{path.relative_to(ROOT)}:{line}: {match[0]} != {version}")
    return problems


def image_problems(env: dict[str, str], labels: dict[str, str], head: str, sbom: Path) -> list[str]:
    """Where the built image (dist/image.env, its labels, its SBOM) disagrees with the release."""
    version = package_version()
    problems = []
    if not env["IMAGE"].endswith(f":{version}"):
        problems.append(f"image {env['IMAGE']} is not tagged {version}")
    if labels.get(LABEL + "version") != version:
        problems.append(f"image label version {labels.get(LABEL + 'version')!r} != {version!r}")
    if labels.get(LABEL + "revision") != head:
        problems.append(
            f"image label revision {labels.get(LABEL + 'revision')!r} is not HEAD {head}: "
            "commit, then `make image`"
        )
    if not sbom.exists():
        problems.append(f"no SBOM {sbom.name}: `make image` writes it")
    else:
        bom = json.loads(sbom.read_text())
        root = bom.get("metadata", {}).get("component", {})
        if (root.get("name"), root.get("version")) != ("gptoss-operator", version):
            problems.append(f"{sbom.name} does not describe gptoss-operator {version}")
        if not bom.get("components"):
            problems.append(f"{sbom.name} lists no installed package")
    return problems


def _image_labels(env: dict[str, str]) -> dict[str, str]:
    engine = "docker" if env.get("ENGINE") == "docker" else "podman"
    out = subprocess.run(
        [engine, "image", "inspect", "--format", "{{json .Config.Labels}}", env["IMAGE"]],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    labels: dict[str, str] = json.loads(out) or {}
    return labels


def _helm() -> Path:
    sys.path.insert(0, str(ROOT / "tools" / "chart"))
    import chartgen  # a script beside this one, not a package

    helm: Path = chartgen.helm_binary()
    return helm


def package_problems(helm: Path) -> list[str]:
    """`helm package` the chart into dist/; lint the package strictly; read its appVersion."""
    version = package_version()
    DIST.mkdir(exist_ok=True)
    subprocess.run(
        [str(helm), "package", str(CHART), "--destination", str(DIST)],
        check=True,
        capture_output=True,
    )
    package = DIST / f"gptoss-operator-{version}.tgz"
    if not package.exists():
        return [f"helm package did not write {package.relative_to(ROOT)}"]
    lint = subprocess.run(
        [str(helm), "lint", "--strict", str(package)], capture_output=True, text=True, check=False
    )
    problems = []
    if lint.returncode != 0:
        problems.append(f"helm lint --strict {package.name}:\n{lint.stdout}{lint.stderr}")
    shown: dict[str, Any] = yaml.safe_load(
        subprocess.run(
            [str(helm), "show", "chart", str(package)], check=True, capture_output=True, text=True
        ).stdout
    )
    if str(shown.get("appVersion")) != version:
        problems.append(f"{package.name} appVersion {shown.get('appVersion')!r} != {version!r}")
    return problems


def main() -> int:
    problems = version_problems()
    problems += package_problems(_helm())
    env_file = DIST / "image.env"
    if not env_file.exists():
        problems.append("no dist/image.env: build the image first (`make image`)")
    else:
        env = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout.strip()
        sbom = DIST / f"sbom-gptoss-operator-{package_version()}.cdx.json"
        problems += image_problems(env, _image_labels(env), head, sbom)
        if "@sha256:" not in env["BASE"]:
            # A local base (CI without a registry) makes a test image, not one to publish.
            print(f"note: base {env['BASE']} is not pinned by digest: not an image to publish")
    for problem in problems:
        print(f"release-check: {problem}", file=sys.stderr)
    if not problems:
        print(f"release-check: version {package_version()} agrees everywhere")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
