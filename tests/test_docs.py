"""The map of where a change goes (docs/layout.md) names every module and benchmark script there is."""

from __future__ import annotations

import re

from tests.conftest import REPO


def named_files(folder: str) -> set[str]:
    """The ``.py`` files the map's lines for ``folder`` name (``harness/a.py, b.py   what they do``)."""
    text = (REPO / "docs" / "layout.md").read_text()
    names = set()
    for line in text.splitlines():
        if line.startswith(f"{folder}/") or (names and folder == "benchmarks" and line.startswith(" " * 10)):
            names |= set(re.findall(r"([a-z_]+\.py)", line))
    return names


def test_the_layout_map_names_every_module_and_benchmark():
    for folder in ("harness", "benchmarks"):
        present = {path.name for path in (REPO / folder).glob("*.py") if path.name != "__init__.py"}
        missing = present - named_files(folder)
        assert not missing, f"docs/layout.md does not say where these are: {sorted(missing)}"
