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

    finished = [r.finished_at for r in rows if r.finished_at]
    last = datetime.datetime.fromtimestamp(max(finished) / 1000, datetime.UTC).isoformat() if finished else None
    return {
        "command": command or "bench " + shlex.join(sys.argv[1:]),
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

    folder.mkdir(parents=True, exist_ok=True)
    hardware = meta["hardware"][0] if meta["hardware"] else "unknown"
    stem = f"{meta['profile']}-{meta['device']}-{_slug(hardware)}"
    header = "".join(f"# {key}: {json.dumps(value)}\n" for key, value in meta.items())
    written = []
    tables = [(stem, leaderboard.to_json(rows), leaderboard.to_csv(rows))]
    if deltas:
        tables.append((f"{stem}-steps", steps.to_json(deltas), steps.to_csv(deltas)))
    for name, as_json, as_csv in tables:
        json_path, csv_path = folder / f"{name}.json", folder / f"{name}.csv"
        json_path.write_text(json.dumps({"provenance": meta, "rows": json.loads(as_json)}, indent=1) + "\n")
        csv_path.write_text(header + as_csv)
        written += [json_path, csv_path]
    return written


def published_rows(folder: Path, profile: str, *, current_hashes=None) -> list:
    """The leaderboard rows published for ``profile`` in ``folder`` (each
    ``<profile>-<device>-<hardware>.json``, not its ``-steps``), for readers that compare with
    results this machine does not hold (``bench agreement`` against `full`). ``current_hashes``
    (device → recipe → hash) keeps only rows of a recipe's current configuration; where two
    files hold a recipe, the one with more seeds wins."""
    from dataclasses import fields

    from harness.leaderboard import Row

    known = {f.name for f in fields(Row)}
    chosen: dict[str, Row] = {}
    for path in sorted(Path(folder).glob(f"{profile}-*.json")):
        if path.stem.endswith("-steps"):
            continue
        try:
            published = json.loads(path.read_text())
            meta, records = published["provenance"], published["rows"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not a published leaderboard: nothing to compare with
        if meta.get("profile") != profile:
            continue
        hashes = None if current_hashes is None else current_hashes(meta.get("device", "cpu"))
        for record in records:
            row = Row(**{k: v for k, v in record.items() if k in known})
            if hashes is not None and hashes.get(row.recipe) != row.config_hash:
                continue  # the recipe changed since: not its result any more
            if row.recipe not in chosen or row.n > chosen[row.recipe].n:
                chosen[row.recipe] = row
    return list(chosen.values())


def reference_rows(config, tracker, variant, folder: Path) -> list:
    """`full`'s rows of the current configuration: from the store, and for recipes the store
    has no finished run of, from the results published in ``folder``."""
    import dataclasses

    from harness.agreement import REFERENCE
    from harness.identity import current_hashes
    from harness.leaderboard import collect_rows

    if REFERENCE not in config.profiles:
        return []
    stored = [
        r
        for r in collect_rows(tracker, profile=REFERENCE, current_hashes=current_hashes(config, REFERENCE, variant))
        if r.n
    ]

    def hashes(device: str) -> dict[str, str]:
        return current_hashes(config, REFERENCE, dataclasses.replace(variant, device=device))

    have = {r.recipe for r in stored}
    return stored + [
        r for r in published_rows(folder, REFERENCE, current_hashes=hashes) if r.recipe not in have and r.n
    ]


def board_view(config, tracker, rows, *, profile: str, variant, names=None, against: str = "previous"):
    """``rows`` (one profile's, as shown) with their verdicts (``harness.agreement.view``); for a
    budget profile its line, with the agreement measured against `full`'s ``reference_rows``
    (this store, and the results published beside the benchmarks file)."""
    from harness.agreement import view

    reference = None
    if config.profile(profile).is_budget:
        reference = reference_rows(config, tracker, variant, Path(config.path).resolve().parent / "results")
    chosen = {r.recipe for r in rows} if names is None else names
    return view(config, rows, profile=profile, names=chosen, reference=reference, against=against)
