"""The map of where a change goes (docs/layout.md) names every module and benchmark script there is."""

from __future__ import annotations

import re

from tests.conftest import REPO


def named_paths(top: str) -> set[str]:
    """The ``.py`` paths the map's lines under ``top`` name: ``harness/a.py, b.py   what they do``
    names files beside the first, ``harness/run/   a.py, b.py ...`` files in that folder, and an
    indented line goes on with the line above it."""
    text = (REPO / "docs" / "layout.md").read_text()
    names, folder = set(), None
    for line in text.splitlines():
        if line.startswith(f"{top}/"):
            first = line.split()[0].rstrip(",")
            folder = first if first.endswith("/") else first.rsplit("/", 1)[0] + "/"
        elif not line.startswith(" " * 10):
            folder = None
        if folder is not None:
            names |= {folder + name for name in re.findall(r"\b([a-z_]+\.py)\b", line)}
    return names


def test_the_layout_map_names_every_module_and_benchmark():
    for top in ("harness", "benchmarks"):
        present = {
            path.relative_to(REPO).as_posix()
            for path in (REPO / top).rglob("*.py")
            if path.name not in ("__init__.py", "__main__.py")
        }
        missing = present - named_paths(top)
        assert not missing, f"docs/layout.md does not say where these are: {sorted(missing)}"
