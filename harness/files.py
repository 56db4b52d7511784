"""Output files written whole or not at all, and paths that cannot be written named in one line.

Every file a command writes (``--output``, ``--update-readme``, ``--plots``, ``--publish``) is
first written to a temporary file beside it and then renamed over it, so an interrupted or failed
write never leaves half a table; a group of files is renamed only once all are written. A path
that cannot be written (a missing folder, a file where a folder goes, no permission) is an
``OutputError`` naming it, checked before any work where the path is known up front.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from harness.errors import HarnessError


class OutputError(HarnessError):
    """A file or folder the command was asked to write cannot be written."""


def _reason(error: OSError) -> str:
    return error.strerror or type(error).__name__


def _named(option: str, path: Path) -> str:
    return f"{option} {path}" if option else str(path)


def check_file_target(path: Path, option: str = "") -> None:
    """``path`` can be created or replaced as a file: its folder exists and it is not a folder."""
    if path.is_dir():
        raise OutputError(f"{_named(option, path)}: a folder, not a file")
    if not path.parent.is_dir():
        what = "is not a folder" if path.parent.exists() else "does not exist"
        raise OutputError(f"{_named(option, path)}: its folder {path.parent} {what}")


def check_folder_target(path: Path, option: str) -> None:
    """``path`` is a folder or can be made one: no file stands in the way on the path to it."""
    for step in (path, *path.parents):
        if step.exists():
            if not step.is_dir():
                where = "is a file" if step == path else f"lies under {step}, a file"
                raise OutputError(f"{_named(option, path)}: {where}, not a folder")
            return


def output_folder(path: Path, option: str) -> Path:
    """Make the folder ``path`` (and its parents); ``OutputError`` if it cannot be."""
    check_folder_target(path, option)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"{_named(option, path)}: cannot make the folder: {_reason(error)}") from None
    return path


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to (same suffix, so writers that go by it
    still work); renamed over ``path`` when the block ends without an error, removed otherwise."""
    try:
        handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f"{path.suffix}.tmp")
    except OSError as error:
        raise OutputError(f"{path}: cannot write: {_reason(error)}") from None
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        os.replace(temporary, path)
    except OSError as error:
        raise OutputError(f"{path}: cannot write: {_reason(error)}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def write_files(contents: dict[Path, str]) -> list[Path]:
    """Write each text to its path: all to temporary files first, then each renamed over its
    target, so a failure leaves every target as it was (or, past the first rename, whole)."""
    written: list[tuple[Path, Path]] = []
    path = Path()
    try:
        for path, text in contents.items():
            check_file_target(path)
            handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            written.append((Path(name), path))
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(text)
        for temporary, path in written:  # ``path`` names the file in an error
            os.replace(temporary, path)
    except OSError as error:
        raise OutputError(f"{path}: cannot write: {_reason(error)}") from None
    finally:
        for temporary, _ in written:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
    return list(contents)


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` whole or not at all."""
    return write_files({path: text})[0]
