"""The leaderboard: rebuilt from MLflow runs alone, one row per (recipe, profile).

Rows aggregate the FINISHED seeds of one group (recipe, profile, config hash, data
fingerprint). Where a recipe was changed and so has several groups, the group matching the
current benchmarks.toml wins, else the most recently run one. Profiles are never pooled.
"""

from __future__ import annotations

import csv
import io
import json
import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any

from harness.errors import HarnessError
from harness.schema import (
    METRIC_EPOCHS_RUN,
    METRIC_IMAGES_PER_SECOND,
    METRIC_TEST_ACCURACY,
    METRIC_TRAIN_SECONDS,
    PARAM_COMMIT,
    PARAM_HARDWARE,
    PARAM_PARAMS,
    PARAM_REPORTED_ACCURACY,
    TAG_CONFIG_HASH,
    TAG_DATA,
    TAG_GROUP,
    TAG_PROFILE,
    TAG_RECIPE,
    TAG_REPORT,
    TAG_SEED,
    metric,
    setting,
)
from harness.stats import describe
from harness.tracking import Tracker


@dataclass
class Row:
    rank: int
    recipe: str
    profile: str
    n: int
    mean: float | None
    std: float | None
    ci_low: float | None
    ci_high: float | None
    minimum: float | None
    maximum: float | None
    reported: float | None
    difference: float | None
    reported_in_ci: bool | None
    params: int | None
    train_seconds: float | None
    images_per_second: float | None
    epochs_run: float | None
    failed: int
    seeds: list[int]
    values: list[float]
    p_vs_leader: float | None
    tied_with_leader: bool | None
    report: str
    config_hash: str
    data_fingerprint: str
    hardware: str
    commit: str
    finished_at: int | None


SIGNIFICANCE = 0.05  # Welch's t-test threshold for "distinguishable from the leader"

# Numeric Row fields that are not test accuracies (nor differences of them): counts, sizes,
# times, p-values. Every other float field is an accuracy, shown in % on parent runs, so a
# statistic added to Row later reaches the MLflow UI without a change here.
NOT_ACCURACY = {"rank", "n", "params", "train_seconds", "images_per_second", "epochs_run", "failed", "finished_at"}
NOT_ON_PARENT = {"finished_at"}  # a timestamp: the run list has its own columns for time


def _is_accuracy(name: str) -> bool:
    return name not in NOT_ACCURACY and not name.startswith("p_") and "p_value" not in name and "second" not in name


def board_metrics(row: Row) -> dict[str, float]:
    """Every number of ``row`` under ``board/``: accuracies and their differences in % as
    ``board/<field>_pct`` (mean first: the compare view charts the first metric by default),
    counts and times as they are, yes/no fields as 1/0, floats to 4 decimals (what a table can
    show). Fields without a value are left out."""
    from dataclasses import fields

    from harness.schema import BOARD_PREFIX

    metrics: dict[str, float] = {}
    for name in ["mean", *(f.name for f in fields(row) if f.name != "mean")]:
        value = getattr(row, name)
        if name in NOT_ON_PARENT or value is None or isinstance(value, str | list | tuple | dict):
            continue
        if isinstance(value, bool):
            metrics[f"{BOARD_PREFIX}{name}"] = float(value)
        elif isinstance(value, float) and _is_accuracy(name):
            metrics[f"{BOARD_PREFIX}{name}_pct"] = round(100 * value, 4)
        elif isinstance(value, int | float):
            metrics[f"{BOARD_PREFIX}{name}"] = round(float(value), 4) if isinstance(value, float) else float(value)
    return metrics


def _mean(values: list[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def collect_rows(
    tracker: Tracker, *, profile: str | None = None, current_hashes: dict[str, str] | None = None
) -> list[Row]:
    """Aggregate child runs into ranked rows (by mean test accuracy, best first)."""
    runs = tracker.child_runs(profile)
    groups: dict[str, list] = {}
    for run in runs:
        groups.setdefault(run.data.tags.get(TAG_GROUP, ""), []).append(run)

    chosen: dict[tuple[str, str], list] = {}
    for members in groups.values():
        tags = members[0].data.tags
        key = (tags[TAG_RECIPE], tags[TAG_PROFILE])
        current = (current_hashes or {}).get(key[0])
        if current is not None and tags[TAG_CONFIG_HASH] != current:
            continue  # an older (or other-precision) configuration of the recipe: never shown as its result
        if key in chosen:
            current = (current_hashes or {}).get(key[0])
            incumbent = chosen[key][0].data.tags[TAG_CONFIG_HASH]
            if current == incumbent:
                continue
            if current != tags[TAG_CONFIG_HASH]:
                latest = max(r.info.start_time for r in members)
                if latest <= max(r.info.start_time for r in chosen[key]):
                    continue
        chosen[key] = members

    rows = []
    for (recipe, profile_name), members in chosen.items():
        finished = [
            r
            for r in members
            if r.info.status == "FINISHED" and metric(r.data.metrics, METRIC_TEST_ACCURACY) is not None
        ]
        failed = sum(1 for r in members if r.info.status == "FAILED")
        accuracies = [metric(r.data.metrics, METRIC_TEST_ACCURACY) for r in finished]
        summary = describe(accuracies)
        reported_text = members[0].data.params.get(PARAM_REPORTED_ACCURACY, "None")
        reported = None if reported_text in ("None", "", None) else float(reported_text)
        counts = (setting(r.data.params, r.data.metrics, PARAM_PARAMS) for r in finished)
        params = next((int(count) for count in counts if count is not None), None)

        def metric_mean(name: str, runs: list = finished) -> float | None:
            return _mean([value for r in runs if (value := metric(r.data.metrics, name)) is not None])

        in_ci = None
        if reported is not None and summary.ci_low is not None:
            in_ci = bool(summary.ci_low <= reported <= summary.ci_high)
        tags = members[0].data.tags
        rows.append(
            Row(
                rank=0,
                recipe=recipe,
                profile=profile_name,
                n=summary.n,
                mean=summary.mean,
                std=summary.std,
                ci_low=summary.ci_low,
                ci_high=summary.ci_high,
                minimum=summary.minimum,
                maximum=summary.maximum,
                reported=reported,
                difference=None if reported is None or summary.mean is None else summary.mean - reported,
                reported_in_ci=in_ci,
                params=params,
                train_seconds=metric_mean(METRIC_TRAIN_SECONDS),
                images_per_second=metric_mean(METRIC_IMAGES_PER_SECOND),
                epochs_run=metric_mean(METRIC_EPOCHS_RUN),
                failed=failed,
                seeds=sorted(int(r.data.tags.get(TAG_SEED, -1)) for r in finished),
                values=[
                    metric(r.data.metrics, METRIC_TEST_ACCURACY)
                    for r in sorted(finished, key=lambda r: int(r.data.tags.get(TAG_SEED, -1)))
                ],
                p_vs_leader=None,
                tied_with_leader=None,
                report=tags.get(TAG_REPORT, ""),
                config_hash=tags.get(TAG_CONFIG_HASH, ""),
                data_fingerprint=tags.get(TAG_DATA, ""),
                hardware=_most_common([r.data.params.get(PARAM_HARDWARE, "") for r in finished]),
                commit=_most_common([r.data.params.get(PARAM_COMMIT, "") for r in finished]),
                finished_at=max((r.info.end_time or 0 for r in finished), default=None),
            )
        )
    rows.sort(key=lambda r: (r.profile, -(r.mean if r.mean is not None else -1.0), r.recipe))
    return _ranked(rows)


def _ranked(rows: list[Row]) -> list[Row]:
    """Number the rows within each profile (they are sorted best first) and compare each
    profile's rows with its leader."""
    rank_by_profile: dict[str, int] = {}
    for row in rows:
        rank_by_profile[row.profile] = rank_by_profile.get(row.profile, 0) + 1
        row.rank, row.tied_with_leader, row.p_vs_leader = rank_by_profile[row.profile], None, None
    for name in rank_by_profile:
        compare_with_leader([r for r in rows if r.profile == name])
    return rows


def only_recipes(rows: list[Row], names: set[str]) -> list[Row]:
    """The rows of ``names``, ranked again among themselves (a suite's own leader and ≈)."""
    return _ranked([r for r in rows if r.recipe in names])


def _most_common(values: list[str]) -> str:
    values = [v for v in values if v]
    return max(set(values), key=values.count) if values else ""


def compare_with_leader(rows: list[Row]) -> None:
    """Welch's t-test (unequal variances) of each row against the leader of its profile.

    ``tied_with_leader`` is True where p >= SIGNIFICANCE: the difference from the leader is
    not distinguishable from seed noise at that level. Needs n >= 2 on both sides.
    """
    if not rows or rows[0].n < 2:
        return
    from scipy import stats

    leader = rows[0]
    leader.tied_with_leader, leader.p_vs_leader = True, 1.0
    for row in rows[1:]:
        if row.n < 2:
            continue
        if max(row.values) == min(row.values) and max(leader.values) == min(leader.values):
            p_value = 1.0 if row.values[0] == leader.values[0] else 0.0
        else:
            with warnings.catch_warnings():  # one constant sample: scipy warns, the test is still defined
                warnings.simplefilter("ignore", RuntimeWarning)
                p_value = float(stats.ttest_ind(leader.values, row.values, equal_var=False).pvalue)
        row.p_vs_leader = p_value
        row.tied_with_leader = p_value >= SIGNIFICANCE


def _percent(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f}"


def _accuracy_cell(row: Row) -> str:
    if row.mean is None:
        return "no finished run"
    if row.std is None:
        return f"{_percent(row.mean)} (n=1, no spread)"
    return f"{_percent(row.mean)} ± {_percent(row.std)}"


def _ci_cell(row: Row) -> str:
    if row.ci_low is None:
        return "n<2"
    return f"[{_percent(row.ci_low)}, {_percent(row.ci_high)}]"


def _reported_cell(row: Row) -> str:
    if row.reported is None:
        return "–"
    mark = "" if row.reported_in_ci is None else (" ✓" if row.reported_in_ci else " ✗")
    return f"{_percent(row.reported)}{mark}"


COLUMNS = (
    "#",
    "recipe",
    "n",
    "acc % mean ± std",
    "95% CI",
    "min–max",
    "reported %",
    "Δ pp",
    "params",
    "s/run",
    "img/s",
    "epochs",
)


def table_cells(row: Row) -> list[str]:
    return [
        str(row.rank) + (" ≈" if row.tied_with_leader and row.rank > 1 else ""),
        row.recipe,
        str(row.n) + (f" (+{row.failed} failed)" if row.failed else ""),
        _accuracy_cell(row),
        _ci_cell(row),
        "–" if row.minimum is None else f"{_percent(row.minimum)}–{_percent(row.maximum)}",
        _reported_cell(row),
        "–" if row.difference is None else f"{100 * row.difference:+.2f}",
        "–" if row.params is None else f"{row.params:,}",
        "–" if row.train_seconds is None else f"{row.train_seconds:.0f}",
        "–" if row.images_per_second is None else f"{row.images_per_second:,.0f}",
        "–" if row.epochs_run is None else f"{row.epochs_run:.1f}",
    ]


LEGEND = (
    "mean ± sample std over seeds; 95% CI is t-based; ≈ = not distinguishable from the leader "
    f"(Welch's t-test, p ≥ {SIGNIFICANCE}); reported = the report's single-run claim, ✓ inside our "
    "CI, ✗ outside; Δ = mean − reported in percentage points; s/run = training seconds per run."
)


def header_line(rows: list[Row]) -> str:
    """Profile, seeds, hardware, date and commit, all taken from the runs themselves."""
    import datetime

    profiles = sorted({r.profile for r in rows})
    seeds = sorted({len(r.seeds) for r in rows})
    seed_text = f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}–{seeds[-1]}"
    stamps = [r.finished_at for r in rows if r.finished_at]
    date = datetime.datetime.fromtimestamp(max(stamps) / 1000, datetime.UTC).strftime("%Y-%m-%d") if stamps else "–"
    hardware = sorted({r.hardware for r in rows if r.hardware}) or ["unknown"]
    commits = sorted({r.commit for r in rows if r.commit}) or ["unknown"]
    return (
        f"Profile `{', '.join(profiles)}`, {seed_text} seeds per recipe, {len(rows)} recipes; "
        f"hardware: {'; '.join(hardware)}; last run finished {date}; code commit {', '.join(commits)}."
    )


README_START = "<!-- leaderboard:start -->"
README_END = "<!-- leaderboard:end -->"


def update_readme(path, rows: list[Row], *, command: str) -> bool:
    """Rewrite only the block between the leaderboard markers; True if the file changed."""
    from pathlib import Path

    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if (
        text.count(README_START) != 1
        or text.count(README_END) != 1
        or text.index(README_START) > text.index(README_END)
    ):
        raise HarnessError(f"{path}: needs exactly one {README_START} … {README_END} block")
    before, rest = text.split(README_START)
    _, after = rest.split(README_END)
    block = f"{README_START}\n{header_line(rows)} Produced by `{command}`.\n\n{to_markdown(rows)}{README_END}"
    updated = before + block + after
    if updated == text:
        return False
    path.write_text(updated, encoding="utf-8")
    return True


def to_markdown(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
    lines += ["| " + " | ".join(table_cells(r)) + " |" for r in rows]
    return "\n".join(lines) + "\n\n" + LEGEND + "\n"


def to_csv(rows: list[Row]) -> str:
    buffer = io.StringIO()
    fields = [k for k in asdict(rows[0])] if rows else list(Row.__dataclass_fields__)
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        record: dict[str, Any] = asdict(row)
        record["seeds"] = " ".join(map(str, row.seeds))
        writer.writerow(record)
    return buffer.getvalue()


def to_json(rows: list[Row]) -> str:
    return json.dumps([asdict(r) for r in rows], indent=2)


def to_rich_table(rows: list[Row], *, title: str):
    from rich.table import Table

    table = Table(title=title, caption=LEGEND, caption_justify="left")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column == "recipe" else "right", no_wrap=column == "recipe")
    for row in rows:
        table.add_row(*table_cells(row))
    return table
