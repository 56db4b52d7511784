"""Run records for the 21 full-budget runs whose MLflow store is lost, rebuilt from the board published then.

    python benchmarks/reconstruct_records.py [--from FILE] [--results DIR]

The 7 recipes × 3 seeds of the README's full-budget table were trained into a store that did not
survive; what survives is the aggregated board `bench leaderboard --publish` wrote from it,
``results/full-cpu-cpu-only-amd-epyc-2-cores.json`` at commit 6d06f2b (read with ``git show``, or
``--from`` a copy). Per seed it gives only the seed and its test accuracy; per recipe the config
hash, data fingerprint and report, the mean training seconds, images/s and epochs over its seeds,
the parameter count, the claim, the most common code commit and hardware and the latest finish;
per board the library versions and the command. The variant (float32, cpu, tensorflow, not
deterministic, no random weights) is the one that board's command ranked: the leaderboard shows
only runs whose config hash is that variant's.

Each record holds exactly that: the seed's accuracy as its own metric, the recipe's and board's
values under ``reconstructed`` (never as the seed's own), no curves, null for what the file does
not give. Rerunnable: a record that is already there and the same is left as it is; one that
differs is reported and kept. Not a test, not a benchmark: the one-off that made results/runs'
reconstructed records, kept so that they can be made again and checked.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.environment import git_commit  # noqa: E402  (after the path is set)
from harness.identity import RunIdentity, Variant  # noqa: E402
from harness.results.records import (  # noqa: E402
    SCHEMA_VERSION,
    compact,
    identity_fields,
    iso,
    write_records,
)
from harness.store.schema import (  # noqa: E402
    METRIC_EPOCHS_RUN,
    METRIC_IMAGES_PER_SECOND,
    METRIC_TEST_ACCURACY,
    METRIC_TRAIN_SECONDS,
    PARAM_COMMIT,
    PARAM_HARDWARE,
    PARAM_PARAMS,
    PARAM_REPORTED_ACCURACY,
)

REPOSITORY = Path(__file__).resolve().parents[1]
LEGACY_FILE = "results/full-cpu-cpu-only-amd-epyc-2-cores.json"
LEGACY_COMMIT = "6d06f2b"  # the commit that added it: "results/: the full-budget leaderboard and step table …"
# Options of the publishing command that would have ranked another variant than the default one.
VARIANT_OPTIONS = ("--precision", "--random-weights", "--device")


def legacy_board(source: Path | None) -> tuple[dict, str]:
    """The old board's JSON and how to name where it came from."""
    if source is not None:
        return json.loads(source.read_text(encoding="utf-8")), str(source)
    text = subprocess.run(
        ["git", "show", f"{LEGACY_COMMIT}:{LEGACY_FILE}"], cwd=REPOSITORY, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(text), f"{LEGACY_FILE} at commit {LEGACY_COMMIT}"


def variant_of(provenance: dict) -> Variant:
    """The variant the old board ranked, from its command and versions; refused where the command
    asked for another one than the default (its precision or weights would then be unknown here)."""
    command = shlex.split(provenance["command"])
    if any(word.split("=")[0] in VARIANT_OPTIONS for word in command):
        raise SystemExit(f"the board was made by {provenance['command']!r}: not the default variant")
    return Variant(device=provenance["device"], backend=provenance["versions"]["keras_backend"])


def present(values: dict) -> dict:
    """``values`` without the keys the old file gives no value for (null there: absent here)."""
    return {key: value for key, value in values.items() if value is not None}


def records(board: dict, origin: str, made_by: str) -> list[dict]:
    provenance = board["provenance"]
    variant = variant_of(provenance)
    made = []
    for row in board["rows"]:
        recipe = {
            "how": "metrics: the mean over these seeds; code_commit, hardware: the most common; finished: the latest",
            "seeds": row["seeds"],
            "metrics": present(
                {
                    METRIC_TRAIN_SECONDS: row["train_seconds"],
                    METRIC_IMAGES_PER_SECOND: row["images_per_second"],
                    METRIC_EPOCHS_RUN: row["epochs_run"],
                }
            ),
            "params": present(
                {
                    PARAM_COMMIT: row["commit"] or None,
                    PARAM_HARDWARE: row["hardware"] or None,
                    PARAM_PARAMS: None if row["params"] is None else str(row["params"]),
                    PARAM_REPORTED_ACCURACY: None if row["reported"] is None else str(row["reported"]),
                }
            ),
            "finished": iso(row["finished_at"]),
        }
        for seed, accuracy in zip(row["seeds"], row["values"], strict=True):
            identity = RunIdentity(
                recipe=row["recipe"],
                profile=row["profile"],
                seed=seed,
                config_hash=row["config_hash"],
                data_fingerprint=row["data_fingerprint"],
                report=row["report"],
                variant=variant,
            )
            made.append(
                {
                    "schema": SCHEMA_VERSION,
                    "made_by": made_by,
                    "identity": identity_fields(identity),
                    "run": {
                        "run_id": None,
                        "status": "FINISHED",
                        "started": None,
                        "finished": None,
                        "resumed": None,
                        "resumed_from_epoch": None,
                    },
                    "metrics": {METRIC_TEST_ACCURACY: compact(accuracy)},
                    "curves": None,
                    "params": {},
                    "reconstructed": {
                        "from": origin,
                        "why": "the MLflow store these runs were trained into is lost; that file, written from it by "
                        "bench leaderboard --publish, gives each seed's test accuracy and the rest per recipe or board",
                        "recipe": recipe,
                        "board": {key: provenance[key] for key in ("command", "generated", "runs", "versions")},
                    },
                }
            )
    return made


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, help=f"a copy of the old board [default: git show "
                        f"{LEGACY_COMMIT}:{LEGACY_FILE}]")  # fmt: skip
    parser.add_argument("--results", type=Path, default=REPOSITORY / "results", help="where runs/ goes")
    options = parser.parse_args()
    board, origin = legacy_board(options.source)
    made_by = f"python benchmarks/reconstruct_records.py (harness {git_commit(REPOSITORY)})"
    report = write_records(options.results, records(board, origin, made_by))
    print(report.line(options.results))
    for line in report.conflicts:
        print(line)
    return 1 if report.conflicts else 0


if __name__ == "__main__":
    sys.exit(main())
