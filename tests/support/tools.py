"""The project's scripts (tools/, tests/testbed/), imported by path: they are scripts, not a
package."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from support.testbed import REPO


def load_script(path: Path, name: str) -> ModuleType:
    """Import the script at `path` as module `name` (registered: dataclasses look their module
    up in sys.modules)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_tool(relative: str) -> ModuleType:
    """Import `tools/<relative>` (e.g. "chart/chartgen.py") as a module."""
    path = REPO / "tools" / relative
    return load_script(path, f"tools_{path.stem}")
