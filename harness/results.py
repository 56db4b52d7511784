"""Results that last: a published leaderboard as small generated text under ``results/``.

A store in /tmp does not survive a machine; what a sweep established does, as
``results/<profile>-<device>-<hardware>.{json,csv}``: the rows, and how they were made (the
command, the code commit, the date, the library versions and hardware of the runs). Never edit
these files by hand: `bench leaderboard --publish results/` writes them again from the store.
"""

from __future__ import annotations

import datetime
import json
import re
import shlex
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from harness.schema import TAG_CONFIG_HASH, TAG_RECIPE


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "unknown"


def run_versions(tracker, rows, profile: str) -> dict[str, str]:
    """The library versions the rows' runs were trained with (the most common value of each
    ``version.*`` param over their FINISHED runs)."""
    wanted = {(row.recipe, row.config_hash) for row in rows}
    counts: dict[str, Counter] = {}
    for run in tracker.child_runs(profile):
        tags = run.data.tags
        if run.info.status != "FINISHED" or (tags.get(TAG_RECIPE), tags.get(TAG_CONFIG_HASH)) not in wanted:
            continue
        for key, value in run.data.params.items():
            if key.startswith("version.") or key == "keras_backend":
                counts.setdefault(key, Counter())[value] += 1
    return {key: counter.most_common(1)[0][0] for key, counter in sorted(counts.items())}


def provenance(tracker, rows, *, profile: str, device: str, command: str | None = None) -> dict[str, Any]:
    """How a published leaderboard was made: command, code commit(s) of its runs and of the
    harness now, dates, versions, hardware."""
    from harness.environment import git_commit
    from harness.tracking import redacted

    finished = [r.finished_at for r in rows if r.finished_at]
    last = datetime.datetime.fromtimestamp(max(finished) / 1000, datetime.UTC).isoformat() if finished else None
    return {
        "command": redacted(command or "bench " + shlex.join(sys.argv[1:])),
        "profile": profile,
        "device": device,
        "hardware": sorted({r.hardware for r in rows if r.hardware}),
        "run_commits": sorted({r.commit for r in rows if r.commit}),
        "harness_commit": git_commit(Path(__file__).resolve().parent),
        "generated": datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat(),
        "last_run_finished": last,
        "versions": run_versions(tracker, rows, profile),
        "recipes": len(rows),
        "runs": sum(r.n for r in rows),
    }


def publish(folder: Path, rows, meta: dict[str, Any], *, deltas=()) -> list[Path]:
    """Write ``<profile>-<device>-<hardware>.json`` (provenance + rows) and ``.csv`` (provenance
    as ``#`` comment lines, then the rows) into ``folder``, and the same for the step deltas
    (``-steps``) when there are any."""
    from harness import leaderboard, steps
    from harness.files import output_folder, write_files

    output_folder(folder, "--publish")
    hardware = meta["hardware"][0] if meta["hardware"] else "unknown"
    stem = f"{meta['profile']}-{meta['device']}-{_slug(hardware)}"
    header = "".join(f"# {key}: {json.dumps(value)}\n" for key, value in meta.items())
    contents: dict[Path, str] = {}
    tables = [(stem, leaderboard.to_json(rows), leaderboard.to_csv(rows))]
    if deltas:
        tables.append((f"{stem}-steps", steps.to_json(deltas), steps.to_csv(deltas)))
    for name, as_json, as_csv in tables:
        contents[folder / f"{name}.json"] = (
            json.dumps({"provenance": meta, "rows": json.loads(as_json)}, indent=1) + "\n"
        )
        contents[folder / f"{name}.csv"] = header + as_csv
    return write_files(contents)  # all of them, or none changed
