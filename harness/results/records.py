"""Results that outlive any store: one small JSON record per finished run under ``results/runs/``.

``bench leaderboard --publish`` writes a record for every store run its board counts, at
``results/runs/<profile>/<device>/<recipe>/seed-<n>-<identity>.json``: the run's identity and
every field it is made of, its final metrics, its per-epoch curves, the params it logged (the
recipe, library versions, hardware, code commit), its times and whether it resumed. The same run
again leaves the file as it is; another run of the same identity is reported and never written
over. ``bench leaderboard`` and ``bench steps`` read the records as runs beside the store's
(``RunSources``: a run in both counts once), and ``bench import`` writes them into a store as
parent and child runs. Never edit a record by hand.
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import RecordError
from harness.files import output_folder, write_text
from harness.identity import RunIdentity, Variant, identity_key
from harness.store.schema import (
    EPOCH_METRICS,
    METRIC_LEARNING_RATE,
    METRIC_TEST_ACCURACY,
    PARAM_DETERMINISTIC,
    PARAM_DEVICE,
    PARAM_PRECISION,
    PARAM_WEIGHTS,
    TAG_CONFIG_HASH,
    TAG_DATA,
    TAG_DEVICE,
    TAG_IDENTITY,
    TAG_IMPORTED,
    TAG_PROFILE,
    TAG_RECIPE,
    TAG_RECONSTRUCTED,
    TAG_REPORT,
    TAG_RESUMED_FROM_EPOCH,
    TAG_SEED,
    TAG_WEIGHTS,
)

SCHEMA_VERSION = 1  # a record's "schema"; a reader refuses a newer one rather than misread it
RUNS = "runs"  # records live in results/runs/, beside anything else results/ may hold
# The per-epoch curves a record keeps (time/epoch_seconds is left out: its mean is time/seconds_per_epoch).
CURVES = (*(EPOCH_METRICS[k] for k in ("accuracy", "val_accuracy", "loss", "val_loss")), METRIC_LEARNING_RATE)
PER_EPOCH = frozenset(EPOCH_METRICS.values())
TOP_LEVEL = ("schema", "made_by", "identity", "run", "metrics", "curves", "params", "reconstructed")


# Formatting ----------------------------------------------------------------------------------


def compact(value: float) -> float | None:
    """A metric as a record keeps it: a float32 value (what Keras computes in) as float32's
    shortest text, any other float as it is; NaN and infinities (invalid JSON) as None."""
    import numpy as np

    if not math.isfinite(value):
        return None
    single = np.float32(value)
    return float(str(single)) if float(single) == value else float(value)


def _text(value: Any, depth: int = 0) -> str:
    if isinstance(value, dict):
        if not value:
            return "{}"
        pad = " " * (depth + 1)
        items = [
            f"{pad}{json.dumps(key, ensure_ascii=False)}: {_text(inner, depth + 1)}" for key, inner in value.items()
        ]
        return "{\n" + ",\n".join(items) + "\n" + " " * depth + "}"
    if isinstance(value, list):  # a curve: one line, so a record is a page, not a thousand lines
        return "[" + ", ".join(_text(inner, depth) for inner in value) + "]"
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def dumps(record: dict[str, Any]) -> str:
    """A record's file text: top-level fields in a fixed order, the keys of params, metrics and
    curves sorted, curves one line each: the same record always gives the same bytes."""
    ordered = {key: record[key] for key in TOP_LEVEL if key in record}
    for key in ("metrics", "curves", "params"):
        if isinstance(ordered.get(key), dict):
            ordered[key] = dict(sorted(ordered[key].items()))
    return _text(ordered) + "\n"


def iso(milliseconds: int | None) -> str | None:
    """MLflow's ms since the epoch as UTC ISO 8601 to the millisecond (exact both ways)."""
    if milliseconds is None:
        return None
    moment = datetime.datetime.fromtimestamp(milliseconds / 1000, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def milliseconds(text: str | None) -> int | None:
    if text is None:
        return None
    return round(datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


# Folders --------------------------------------------------------------------------------------


def results_folder(config_path: Path, option: Path | None = None) -> Path:
    """``--results DIR``, else ``results/`` beside the benchmarks file (the checkout's own)."""
    return option if option is not None else Path(config_path).resolve().parent / "results"


def records_root(folder: Path) -> Path:
    """Where records are under ``folder``: its ``runs/`` when it has one (``results/``), else itself
    (``results/runs`` or a part of it, e.g. ``results/runs/full``)."""
    return folder / RUNS if (folder / RUNS).is_dir() else folder


def record_path(folder: Path, identity: RunIdentity) -> Path:
    """``<folder>/runs/<profile>/<device>/<recipe>/seed-<n>-<identity>.json``: one file per identity."""
    return (
        folder
        / RUNS
        / identity.profile
        / identity.variant.device
        / identity.recipe
        / f"seed-{identity.seed}-{identity.identity}.json"
    )


def shown(path: Path, base: Path | None = None) -> str:
    """A path as a message or a README line shows it: relative to ``base`` (the benchmarks file's
    folder) or else the working directory where it lies below it (``results/runs``), else whole."""
    for folder in (base, Path.cwd()):
        if folder is not None and Path(path).resolve().is_relative_to(Path(folder).resolve()):
            return str(Path(path).resolve().relative_to(Path(folder).resolve()))
    return str(path)


# Store run → record --------------------------------------------------------------------------


def identity_of(run) -> RunIdentity:
    """The identity of a store's child run, from its tags and the variant params it logged."""
    tags, params = run.data.tags, run.data.params
    variant = Variant(
        precision=params.get(PARAM_PRECISION, "float32"),
        random_weights=tags.get(TAG_WEIGHTS) == "random",
        device=tags.get(TAG_DEVICE) or params.get(PARAM_DEVICE, "cpu"),
        backend=params.get("keras_backend", "tensorflow"),
        deterministic=params.get(PARAM_DETERMINISTIC) == "True",
    )
    identity = RunIdentity(
        recipe=tags[TAG_RECIPE],
        profile=tags[TAG_PROFILE],
        seed=int(tags[TAG_SEED]),
        config_hash=tags[TAG_CONFIG_HASH],
        data_fingerprint=tags[TAG_DATA],
        report=tags.get(TAG_REPORT, ""),
        variant=variant,
    )
    if tags.get(TAG_IDENTITY) not in (None, identity.identity):
        raise RecordError(
            f"run {run.info.run_id}: its identity tag does not match its recipe, profile, seed and hashes"
        )
    return identity


def identity_fields(identity: RunIdentity) -> dict[str, Any]:
    """The identity as a record holds it: the key, then every field it is made of."""
    return {"key": identity.identity, **identity.to_dict()}


def record_of(tracker, run, *, made_by: str) -> dict[str, Any]:
    """The record of a FINISHED store run: identity, final metrics, curves, params, times."""
    identity = identity_of(run)
    tags = run.data.tags
    resumed_from = tags.get(TAG_RESUMED_FROM_EPOCH)
    metrics = {
        name: compact(value)
        for name, value in run.data.metrics.items()
        if name not in PER_EPOCH and not name.startswith("system/")
    }
    curves = {}
    for name in CURVES:
        values = tracker.metric_history(run.info.run_id, name)
        if values:
            curves[name] = [compact(v) for v in values]
    return {
        "schema": SCHEMA_VERSION,
        "made_by": made_by,
        "identity": identity_fields(identity),
        "run": {
            "run_id": run.info.run_id,
            "status": run.info.status,
            "started": iso(run.info.start_time),
            "finished": iso(run.info.end_time),
            "resumed": resumed_from is not None,
            "resumed_from_epoch": None if resumed_from is None else int(resumed_from),
        },
        "metrics": metrics,
        "curves": curves,
        "params": dict(run.data.params),
        "reconstructed": None,
    }


# Record → run ---------------------------------------------------------------------------------


@dataclass
class RunInfo:
    run_id: str
    status: str
    start_time: int
    end_time: int | None


@dataclass
class RunData:
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]


@dataclass
class RecordRun:
    """A record read back as the leaderboard reads a store's child run (``info`` and ``data``),
    plus its curves, identity and file: statistics, steps and plots need no other case."""

    info: RunInfo
    data: RunData
    identity: RunIdentity
    curves: dict[str, list[float | None]]
    path: Path
    record: dict[str, Any] = field(repr=False)

    @property
    def reconstructed(self) -> bool:
        return self.record.get("reconstructed") is not None


def _require(record: dict, path: Path, *keys: str) -> None:
    for key in keys:
        if key not in record:
            raise RecordError(f"{shown(path)}: not a run record (no {key!r})")


def as_run(record: dict[str, Any], path: Path) -> RecordRun:
    """``record`` as a run, checked: its schema is one this harness reads, its identity key
    matches the fields it is made of, it FINISHED with a test accuracy. A reconstructed record
    lends each seed its recipe's values where the seed's own are unknown (the mean seconds,
    images/s and epochs, the most common commit and hardware, the latest finish): what the board
    it was rebuilt from showed, so the rows come out the same."""
    if not isinstance(record, dict):
        raise RecordError(f"{shown(path)}: not a run record (not a JSON object)")
    _require(record, path, "schema", "identity", "run", "metrics", "params")
    if record["schema"] != SCHEMA_VERSION:
        raise RecordError(f"{shown(path)}: record schema {record['schema']!r}; this harness reads {SCHEMA_VERSION}")
    fields = dict(record["identity"])
    _require(fields, path, "key", "recipe", "profile", "seed", "config_hash", "data_fingerprint")
    key = fields.pop("key")
    try:
        identity = RunIdentity.from_dict(fields)
    except TypeError as error:
        raise RecordError(f"{shown(path)}: bad identity ({error})") from None
    if identity.identity != key:
        raise RecordError(f"{shown(path)}: identity key {key} does not match the fields it is made of (edited?)")
    run = record["run"]
    accuracy = record["metrics"].get(METRIC_TEST_ACCURACY)
    if run.get("status") != "FINISHED" or not isinstance(accuracy, int | float):
        raise RecordError(f"{shown(path)}: a record is a FINISHED run with {METRIC_TEST_ACCURACY}")
    params = {k: str(v) for k, v in record["params"].items() if v is not None}
    metrics = {k: float(v) for k, v in record["metrics"].items() if v is not None}
    finished = milliseconds(run.get("finished"))
    tags = identity.tags()
    if params.get(PARAM_WEIGHTS):
        tags[TAG_WEIGHTS] = "random" if identity.variant.random_weights else "imagenet"
    if run.get("resumed_from_epoch") is not None:
        tags[TAG_RESUMED_FROM_EPOCH] = str(run["resumed_from_epoch"])
    reconstructed = record.get("reconstructed")
    if reconstructed is not None:
        tags[TAG_RECONSTRUCTED] = "true"
        recipe = reconstructed.get("recipe", {})
        metrics = {**{k: float(v) for k, v in recipe.get("metrics", {}).items() if v is not None}, **metrics}
        params = {**{k: str(v) for k, v in recipe.get("params", {}).items() if v is not None}, **params}
        finished = finished if finished is not None else milliseconds(recipe.get("finished"))
    started = milliseconds(run.get("started"))
    return RecordRun(
        info=RunInfo(
            run_id=run.get("run_id") or f"record-{key}",
            status="FINISHED",
            start_time=started if started is not None else finished or 0,
            end_time=finished,
        ),
        data=RunData(tags=tags, params=params, metrics=metrics),
        identity=identity,
        curves=dict(record.get("curves") or {}),
        path=path,
        record=record,
    )


def read_record(path: Path) -> RecordRun:
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RecordError(f"{shown(path)}: cannot read it as a run record ({error})") from None
    return as_run(record, Path(path))


def read_records(folder: Path) -> list[RecordRun]:
    """Every record under ``folder`` (``results/``, its ``runs/``, or a part of it), in path
    order; none where the folder does not exist."""
    root = records_root(Path(folder))
    if not root.is_dir():
        return []
    return [read_record(path) for path in sorted(root.rglob("seed-*.json"))]


# Writing --------------------------------------------------------------------------------------


def _same(first: dict, second: dict) -> bool:
    """Two records of one run: equal in all but how the file was made."""
    return {k: v for k, v in first.items() if k != "made_by"} == {k: v for k, v in second.items() if k != "made_by"}


def _summary(record: dict) -> str:
    accuracy = record.get("metrics", {}).get(METRIC_TEST_ACCURACY)
    run = (record.get("run") or {}).get("run_id") or ("reconstructed" if record.get("reconstructed") else "no run id")
    return f"run {run}, test accuracy {'?' if accuracy is None else f'{100 * accuracy:.2f}%'}"


@dataclass
class WriteReport:
    written: list[Path] = field(default_factory=list)  # new files, and records of the same run refreshed
    unchanged: list[Path] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)  # one line each: kept, not overwritten

    def line(self, folder: Path) -> str:
        text = f"{shown(folder / RUNS)}: {len(self.written)} written, {len(self.unchanged)} unchanged"
        return text + (f", {len(self.conflicts)} kept (another run of the same identity)" if self.conflicts else "")


def write_records(folder: Path, records: Iterable[dict[str, Any]]) -> WriteReport:
    """Write each record to its file under ``folder``/runs. A file holding the same run is left
    as it is (or refreshed, where only its layout changed); a file holding another run of the
    same identity, or one that cannot be read, is kept and reported, never written over."""
    report = WriteReport()
    for record in records:
        path = record_path(folder, as_run(record, Path("(new record)")).identity)
        if path.exists():
            try:
                existing = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                existing = None
            if isinstance(existing, dict) and _same(existing, record):
                report.unchanged.append(path)
                continue
            same_run = isinstance(existing, dict) and (existing.get("run") or {}).get("run_id") not in (None, "")
            same_run = same_run and existing["run"]["run_id"] == (record.get("run") or {}).get("run_id")
            if not same_run:
                held = "an unreadable file" if not isinstance(existing, dict) else _summary(existing)
                report.conflicts.append(
                    f"{shown(path)} holds {held}, not {_summary(record)}: kept (delete it to publish this run)"
                )
                continue
        write_text(output_folder(path.parent, "--publish") / path.name, dumps(record))  # whole or not at all
        report.written.append(path)
    return report


# Where a board's runs come from -------------------------------------------------------------


class RunSources:
    """A board's runs: the store's child runs, the records', or both. A record whose identity
    FINISHED in the store is left out (the store's run has everything: artifacts, system
    metrics), so a run published and still in the store counts once."""

    def __init__(
        self,
        store=None,
        records: list[RecordRun] | None = None,
        *,
        folder: Path | None = None,
        base: Path | None = None,
    ) -> None:
        self.store = store
        self.records = list(records or [])
        self.folder = folder  # where the records were read from (None: not asked for)
        self.base = base  # what paths are shown relative to: the benchmarks file's folder
        self.runs: list = []  # what the last child_runs() returned

    def child_runs(self, profile: str | None = None) -> list:
        store_runs = self.store.child_runs(profile) if self.store is not None else []
        finished = {r.data.tags.get(TAG_IDENTITY) for r in store_runs if r.info.status == "FINISHED"}
        from_records = [
            r
            for r in self.records
            if (profile is None or r.identity.profile == profile) and r.identity.identity not in finished
        ]
        self.runs = [*store_runs, *from_records]
        return self.runs

    @property
    def where(self) -> str:
        """Where the runs were looked for, for a message."""
        from harness.store.connection import redacted

        places = [] if self.store is None else [redacted(self.store.tracking_uri)]
        if self.folder is not None:
            places.append(shown(records_root(self.folder), self.base))
        return " and ".join(places) or "nowhere"

    def behind(self, rows, hashes: dict | None = None) -> list:
        """The runs the ``rows`` were made of (as the last ``child_runs`` returned them): those
        whose identity is one of a row's seeds, under the row's config hash or, for a pooled
        row, ``hashes`` (the other hardware class's, by recipe, or by (recipe, profile) for
        rows of several profiles)."""
        wanted = set()
        hashes = hashes or {}
        for row in rows:
            for config in {row.config_hash, hashes.get(row.recipe), hashes.get((row.recipe, row.profile))} - {None}:
                wanted |= {identity_key(row.recipe, row.profile, config, row.data_fingerprint, s) for s in row.seeds}
        kept: dict[str, Any] = {}
        for run in self.runs:
            key = run.data.tags.get(TAG_IDENTITY)
            if run.info.status == "FINISHED" and key in wanted:
                kept.setdefault(key, run)
        return list(kept.values())

    def origin(self, rows, hashes: dict | None = None) -> str:
        """One sentence on where ``rows`` come from, e.g. 'Rows from results/runs (21 records,
        21 reconstructed).'"""
        runs = self.behind(rows, hashes)
        records = [r for r in runs if isinstance(r, RecordRun)]
        stored = [r for r in runs if not isinstance(r, RecordRun)]
        parts = []
        if stored:
            imported = sum(TAG_IMPORTED in r.data.tags for r in stored)
            rebuilt = sum(r.data.tags.get(TAG_RECONSTRUCTED) == "true" for r in stored)
            extra = (f", {imported} imported from records" if imported else "") + (
                f", {rebuilt} reconstructed" if rebuilt else ""
            )
            parts.append(f"an MLflow store ({len(stored)} run{'s' * (len(stored) != 1)}{extra})")
        if records:
            rebuilt = sum(r.reconstructed for r in records)
            where = shown(records_root(self.folder), self.base) if self.folder is not None else "records"
            parts.append(
                f"{where} ({len(records)} record{'s' * (len(records) != 1)}"
                + (f", {rebuilt} reconstructed" if rebuilt else "")
                + ")"
            )
        return f"Rows from {' and '.join(parts) or 'no runs'}."


def publishable(runs: list) -> tuple[list, int]:
    """The store runs among ``runs`` that a publish writes, and how many it passes over because
    they are records already (read from results/, or imported from there)."""
    stored = [r for r in runs if not isinstance(r, RecordRun) and TAG_IMPORTED not in r.data.tags]
    return stored, len(runs) - len(stored)


# Import ---------------------------------------------------------------------------------------


@dataclass
class ImportReport:
    imported: list[RecordRun] = field(default_factory=list)
    skipped: int = 0  # already FINISHED in the store (by identity)


def import_records(tracker, config, records: list[RecordRun], *, base: Path | None = None) -> ImportReport:
    """Write ``records`` into the store as the sweep would have: each record a FINISHED child run
    (its params, metrics, curves and times, tagged as imported, and reconstructed where it was)
    under its recipe's parent run; then each parent's n / mean / std, seed-band plots where the
    records have curves, and the board metrics. A record whose identity already FINISHED in the
    store is skipped, so importing twice adds nothing. Paths are named relative to ``base``."""
    from harness.identity import config_hash, current_hashes
    from harness.results.leaderboard import collect_rows
    from harness.results.parents import child_description, parent_description
    from harness.results.publish import publish_board_metrics, publish_parent_plots
    from harness.store.recipe_params import parent_params
    from harness.store.schema import PARAM_COMMIT, TAG_SOURCE_COMMIT
    from harness.store.tracking import DataInput
    from harness.sweep.plan import RunSpec

    finished = tracker.finished_identities()
    report = ImportReport()
    parents: dict[str, tuple[str, RecordRun]] = {}
    for run in records:
        identity = run.identity
        if identity.identity in finished:
            report.skipped += 1
            continue
        recipe = config.recipes.get(identity.recipe)
        profile_known = identity.profile in config.profiles
        current = (
            recipe is not None
            and profile_known
            and config_hash(config, recipe, config.profile(identity.profile), identity.variant) == identity.config_hash
        )
        source = run.data.params.get("data.source")
        data = DataInput(identity.data_fingerprint, source) if source else None
        note = f" Imported from {shown(run.path, base)}."
        if run.reconstructed:
            note += (
                " Reconstructed: accuracy/test is this seed's own; time/*, training/epochs_run, code_commit, hardware "
                "and the end time are its recipe's (mean, most common, latest over its seeds), from "
                f"{run.record['reconstructed'].get('from', 'an older results file')}; no curves."
            )
        if current:
            spec = RunSpec(recipe=recipe, identity=identity)
            parent = tracker.parent_run(
                identity,
                description=parent_description(spec, config),
                params=parent_params(config, recipe, identity),
                data=data,
            )
            description = child_description(spec) + note
        else:  # a configuration benchmarks.toml no longer has: the parent shows the record's own settings
            settings = {k: v for k, v in run.data.params.items() if k != "seed"}
            parent = tracker.parent_run(
                identity,
                description=f"{identity.recipe} [{identity.profile}], an older configuration ({identity.config_hash}).",
                params=settings,
                data=data,
            )
            description = f"Seed {identity.seed} of {identity.recipe} under profile '{identity.profile}'.{note}"
        child = tracker.child_run(
            identity, parent, description=description.strip(), data=data, start_time=run.info.start_time
        )
        extra = {k: v for k, v in run.data.tags.items() if k not in identity.tags()}
        extra[TAG_IMPORTED] = shown(run.path, base)
        for key, value in extra.items():
            tracker.set_tag(child, key, value)
        commit = run.data.params.get(PARAM_COMMIT, "").removesuffix("+dirty")
        if commit and commit != "unknown":
            tracker.set_tag(child, TAG_SOURCE_COMMIT, commit)  # the run's code, not the importing one's
        tracker.log_params(child, run.data.params)
        tracker.log_metrics(child, run.data.metrics)
        tracker.log_curves(child, run.curves)
        tracker.finish(child, end_time=run.info.end_time)
        parents[identity.group] = (parent, run)
        report.imported.append(run)
    for group, (parent, run) in parents.items():
        tracker.update_parent(parent, group)
        if any(r.curves for r in report.imported if r.identity.group == group):
            publish_parent_plots(tracker, parent, group, title=f"{run.identity.recipe} [{run.identity.profile}]")
    for profile, variant in {(r.identity.profile, r.identity.variant) for r in report.imported}:
        hashes = current_hashes(config, profile, variant) if profile in config.profiles else {}
        publish_board_metrics(tracker, collect_rows(tracker, profile=profile, current_hashes=hashes))
    return report


# A profile's rows as every output shows them ----------------------------------------------------


def reference_rows(config, runs, variant) -> list:
    """`full`'s rows of the current configuration, for a budget profile's agreement, from ``runs``
    (a ``RunSources``: the store's runs and the records, a run in both counted once)."""
    from harness.identity import current_hashes
    from harness.results.agreement import REFERENCE
    from harness.results.leaderboard import collect_rows

    if REFERENCE not in config.profiles:
        return []
    hashes = current_hashes(config, REFERENCE, variant)
    return [row for row in collect_rows(runs, profile=REFERENCE, current_hashes=hashes) if row.n]


def board_view(config, runs, rows, *, profile: str, variant, names=None, against: str = "previous"):
    """``rows`` (one profile's, as shown) with their verdicts (``harness.results.agreement.view``); for a
    budget profile its line, with the agreement measured over every recipe of the profile that
    has runs at both it and `full` among ``runs`` (not only those shown: a suite of three recipes
    measures nothing)."""
    from harness.identity import current_hashes
    from harness.results.agreement import view
    from harness.results.leaderboard import collect_rows

    reference = measured = None
    if config.profile(profile).is_budget:
        reference = reference_rows(config, runs, variant)
        hashes = current_hashes(config, profile, variant)
        measured = [row for row in collect_rows(runs, profile=profile, current_hashes=hashes) if row.n]
    chosen = {r.recipe for r in rows} if names is None else names
    return view(config, rows, profile=profile, names=chosen, reference=reference, measured=measured, against=against)
