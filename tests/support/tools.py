"""The project's tool scripts (tools/), imported by path: they are scripts, not a package."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from support.testbed import REPO


def load_tool(relative: str) -> ModuleType:
    """Import `tools/<relative>` (e.g. "chart/chartgen.py") as a module."""
    path = REPO / "tools" / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
