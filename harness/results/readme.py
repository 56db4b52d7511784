"""The README's generated blocks: text between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``,
rewritten by a command and never by hand (``bench leaderboard --update-readme`` writes
``leaderboard:<profile>``, ``bench steps --update-readme`` writes ``steps:<profile>``)."""

from __future__ import annotations

from pathlib import Path

from harness.errors import HarnessError
from harness.files import OutputError, write_text


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def replace_block(path: Path | str, name: str, content: str) -> bool:
    """Put ``content`` between the markers of block ``name`` in ``path``; True if the file
    changed. The markers must be there exactly once each, in order."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:  # missing, a folder, unreadable
        raise OutputError(f"{path}: cannot read the file to update: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise OutputError(f"{path}: not UTF-8 text; not a README to update") from None
    start, end = markers(name)
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise HarnessError(f"{path}: needs exactly one {start} … {end} block (add the two lines where it goes)")
    before, rest = text.split(start)
    _, after = rest.split(end)
    updated = f"{before}{start}\n{content.rstrip()}\n{end}{after}"
    if updated == text:
        return False
    write_text(path, updated)  # whole or not at all
    return True
