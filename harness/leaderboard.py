"""The leaderboard: rebuilt from runs alone, one row per (recipe, profile).

The runs are an MLflow store's child runs, or the per-run records under results/ read as such
runs (``harness.results.RunSources``): rows are built the same way from either.

Rows aggregate the FINISHED seeds of one group (recipe, profile, config hash, data
fingerprint). Given the current config hashes, only the group matching the current
benchmarks.toml counts; the others (an edited or removed recipe or profile, another precision
or device) are stale: left out, or on request ranked apart and marked ``stale``. Without
hashes, the most recently run group of a recipe wins. Profiles are never pooled.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass
from typing import Any

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
    TAG_IDENTITY,
    TAG_PROFILE,
    TAG_RECIPE,
    TAG_REPORT,
    TAG_SEED,
    metric,
    setting,
)
from harness.stats import ALPHA, describe, holm, welch, within
from harness.tracking import one_per_identity


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
    # Where one more run would land (95% prediction interval), and the claim checked against it.
    pi_low: float | None = None
    pi_high: float | None = None
    reported_in_pi: bool | None = None
    # This row against the leader (the best row with n >= 2): mean − leader's mean, its Welch
    # 95% CI, and the Welch p-value Holm-adjusted across the board's comparisons.
    leader: str = ""
    delta_vs_leader: float | None = None
    delta_ci_low: float | None = None
    delta_ci_high: float | None = None
    p_vs_leader_holm: float | None = None
    leader_verdict: str = ""  # leader | resolved | not resolved | insufficient (n<2) | no finished run
    # Runs of a configuration that is not the current one (--include-stale): ranked apart, marked.
    stale: bool = False


SIGNIFICANCE = ALPHA  # Holm-adjusted Welch p below this: resolved from the leader

VERDICT_LEADER = "leader"
VERDICT_RESOLVED = "resolved"
VERDICT_NOT_RESOLVED = "not resolved"
VERDICT_INSUFFICIENT = "insufficient (n<2)"
VERDICT_NO_RUN = "no finished run"

# Not in the table a leaderboard run shows: a timestamp (the run list has its own columns for time),
# two fields kept in CSV / JSON for older readers whose names say something else than the board's
# checks do (the claim is checked against the prediction interval, reported_in_pi, and "tied" means
# not resolved), and whether a row is of a configuration no longer current (bench leaderboard --include-stale).
NOT_IN_TABLE = {"finished_at", "reported_in_ci", "tied_with_leader", "stale"}


def row_figures(row: Row) -> dict[str, float]:
    """Every number of ``row`` under its field name, mean first: accuracies and their differences
    as fractions (as everywhere in MLflow), yes/no fields as 1/0, floats to 6 decimals. Fields
    without a value are left out. The leaderboard run's table, one row per recipe."""
    from dataclasses import fields

    figures: dict[str, float] = {}
    for name in ["mean", *(f.name for f in fields(row) if f.name != "mean")]:
        value = getattr(row, name)
        if name in NOT_IN_TABLE or value is None or isinstance(value, str | list | tuple | dict):
            continue
        figures[name] = float(value) if isinstance(value, bool | int) else round(float(value), 6)
    return figures


def _cut(bound: float | None) -> float | None:
    """An accuracy interval's bound cut to [0, 1], as the terminal shows it (0*, 100*)."""
    return None if bound is None else min(max(bound, 0.0), 1.0)


def board_metrics(row: Row) -> dict[str, float]:
    """A parent run's metrics (``harness.schema.BOARD_*``): the few figures of ``row`` a reader
    looks for, in reading order, accuracies as fractions, interval bounds cut to [0, 1], the claim
    check as 1/0, to 6 decimals. A figure without a value (the std of one seed, the leader's p, the
    claim of a recipe whose report makes none) is NaN: every parent carries the same names."""
    from harness.schema import (
        BOARD_CI_LOWER,
        BOARD_CI_UPPER,
        BOARD_CLAIM_IN_PI,
        BOARD_CLAIMED,
        BOARD_DELTA_VS_LEADER,
        BOARD_MEAN,
        BOARD_N,
        BOARD_P_VS_LEADER,
        BOARD_PI_LOWER,
        BOARD_PI_UPPER,
        BOARD_STD,
    )

    figures = {
        BOARD_MEAN: row.mean,
        BOARD_STD: row.std,
        BOARD_N: row.n,
        BOARD_CI_LOWER: _cut(row.ci_low),
        BOARD_CI_UPPER: _cut(row.ci_high),
        BOARD_PI_LOWER: _cut(row.pi_low),
        BOARD_PI_UPPER: _cut(row.pi_high),
        BOARD_DELTA_VS_LEADER: row.delta_vs_leader,
        BOARD_P_VS_LEADER: row.p_vs_leader_holm,
        BOARD_CLAIMED: row.reported,
        BOARD_CLAIM_IN_PI: row.reported_in_pi,
    }
    return {name: math.nan if value is None else round(float(value), 6) for name, value in figures.items()}


def _mean(values: list[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def collect_rows(
    tracker,
    *,
    profile: str | None = None,
    current_hashes: dict[str, str] | None = None,
    pooled_hashes: dict[str, str] | None = None,
    include_stale: bool = False,
) -> list[Row]:
    """Aggregate child runs into ranked rows (by mean test accuracy, best first). ``tracker``:
    where the runs come from, anything with ``child_runs(profile)`` (a ``Tracker``, or
    ``RunSources`` over a store and records).

    Given ``current_hashes`` (each recipe's config hash now, under ``profile``), only a group
    with its recipe's current hash counts; every other group of the profile is stale (the recipe
    or profile was edited or removed, or it ran under another precision or device): left out,
    or with ``include_stale`` one row per group marked ``stale`` and ranked apart from the
    current rows. ``pooled_hashes`` (another hardware class's hashes, ``bench leaderboard
    --device any``) adds its runs to the same row. Without ``current_hashes`` nothing is stale:
    the most recently run group of each recipe counts."""
    runs = tracker.child_runs(profile)
    groups: dict[str, list] = {}
    for run in runs:
        groups.setdefault(run.data.tags.get(TAG_GROUP, ""), []).append(run)

    chosen: dict[tuple[str, str], list] = {}
    pooled: dict[tuple[str, str], list] = {}
    stale: dict[tuple[str, str, str], list] = {}
    for group, members in groups.items():
        tags = members[0].data.tags
        key = (tags[TAG_RECIPE], tags[TAG_PROFILE])
        if pooled_hashes and tags[TAG_CONFIG_HASH] == pooled_hashes.get(key[0]):
            pooled.setdefault(key, []).extend(members)
            continue
        if current_hashes is not None:
            if tags[TAG_CONFIG_HASH] != current_hashes.get(key[0]):
                if include_stale:  # never shown as the recipe's result: a row of its own, marked
                    stale[(*key, group)] = members
                continue
            if key in chosen:
                continue  # the current configuration on another dataset: the first one seen counts
        elif key in chosen:
            latest = max(r.info.start_time for r in members)
            if latest <= max(r.info.start_time for r in chosen[key]):
                continue
        chosen[key] = members
    for key, members in pooled.items():
        chosen[key] = chosen.get(key, []) + members

    entries = [(recipe, name, members, False) for (recipe, name), members in chosen.items()]
    entries += [(recipe, name, members, True) for (recipe, name, _), members in stale.items()]
    rows = []
    for recipe, profile_name, members, is_stale in entries:
        # One run per identity: a store two sweeps wrote before claims existed never counts a seed twice.
        finished = one_per_identity(
            [
                r
                for r in members
                if r.info.status == "FINISHED" and metric(r.data.metrics, METRIC_TEST_ACCURACY) is not None
            ]
        )
        # A NaN or infinite accuracy is a failed seed: counted as failed, never a value.
        valid = [r for r in finished if math.isfinite(metric(r.data.metrics, METRIC_TEST_ACCURACY))]
        valid.sort(key=lambda r: int(r.data.tags.get(TAG_SEED, -1)))
        # Failed seeds, not failed runs: a seed that failed and was then retrained and finished is not failed.
        not_finite = [r for r in finished if not math.isfinite(metric(r.data.metrics, METRIC_TEST_ACCURACY))]
        failed_runs = [r for r in members if r.info.status == "FAILED"] + not_finite
        failed = len({_identity(r) for r in failed_runs} - {_identity(r) for r in valid})
        accuracies = [metric(r.data.metrics, METRIC_TEST_ACCURACY) for r in valid]
        summary = describe(accuracies)
        reported_text = members[0].data.params.get(PARAM_REPORTED_ACCURACY, "None")
        reported = None if reported_text in ("None", "", None) else float(reported_text)
        counts = (setting(r.data.params, r.data.metrics, PARAM_PARAMS) for r in valid)
        params = next((int(count) for count in counts if count is not None), None)

        def metric_mean(name: str, runs: list = valid) -> float | None:
            return _mean([value for r in runs if (value := metric(r.data.metrics, name)) is not None])

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
                reported_in_ci=within(reported, summary.ci_low, summary.ci_high),
                params=params,
                train_seconds=metric_mean(METRIC_TRAIN_SECONDS),
                images_per_second=metric_mean(METRIC_IMAGES_PER_SECOND),
                epochs_run=metric_mean(METRIC_EPOCHS_RUN),
                failed=failed,
                seeds=[int(r.data.tags.get(TAG_SEED, -1)) for r in valid],
                values=accuracies,
                p_vs_leader=None,
                tied_with_leader=None,
                report=tags.get(TAG_REPORT, ""),
                config_hash=tags.get(TAG_CONFIG_HASH, ""),
                data_fingerprint=tags.get(TAG_DATA, ""),
                hardware=_most_common([r.data.params.get(PARAM_HARDWARE, "") for r in valid]),
                commit=_most_common([r.data.params.get(PARAM_COMMIT, "") for r in valid]),
                finished_at=max((r.info.end_time or 0 for r in valid), default=None),
                pi_low=summary.pi_low,
                pi_high=summary.pi_high,
                reported_in_pi=within(reported, summary.pi_low, summary.pi_high),
                stale=is_stale,
            )
        )
    return _ranked(rows)


def _identity(run) -> str:
    return run.data.tags.get(TAG_IDENTITY) or run.info.run_id


def _ranking_key(row: Row) -> tuple:
    """Best mean first, rows without a mean last, ties by recipe name: never the input order.
    Stale rows come after a profile's current ones."""
    return (row.profile, row.stale, row.mean is None, -(row.mean or 0.0), row.recipe, row.config_hash)


def _ranked(rows: list[Row]) -> list[Row]:
    """Sort the rows, number them within each board (a profile's current rows; its stale rows
    apart) and compare each board's rows with its leader."""
    rows = sorted(rows, key=_ranking_key)
    rank_by_board: dict[tuple[str, bool], int] = {}
    for row in rows:
        board = (row.profile, row.stale)
        rank_by_board[board] = rank_by_board.get(board, 0) + 1
        row.rank = rank_by_board[board]
    for board in rank_by_board:
        compare_with_leader([r for r in rows if (r.profile, r.stale) == board])
    return rows


def only_recipes(rows: list[Row], names: set[str]) -> list[Row]:
    """The rows of ``names``, ranked again among themselves (a suite's own leader and ≈)."""
    return _ranked([r for r in rows if r.recipe in names])


def _most_common(values: list[str]) -> str:
    values = [v for v in values if v]
    return max(sorted(set(values)), key=values.count) if values else ""


def comparison_leader(rows: list[Row]) -> Row | None:
    """The row every other is compared with: the best mean among rows with n >= 2 (a row with
    one seed has no spread to test against, however high its value)."""
    candidates = [r for r in rows if r.n >= 2]
    return min(candidates, key=_ranking_key) if candidates else None


def compare_with_leader(rows: list[Row]) -> None:
    """Each row of one board against its leader (``comparison_leader``): the difference of
    means with its Welch 95% CI and Welch's p, Holm-adjusted across all the board's comparisons.

    ``tied_with_leader`` (kept for readers of older output) is True where the Holm-adjusted p
    is >= SIGNIFICANCE: the difference is *not resolved* at these n, which is not the same as
    equal. Rows with n < 2 get no test and are marked insufficient.
    """
    for row in rows:
        row.leader, row.p_vs_leader, row.p_vs_leader_holm, row.tied_with_leader = "", None, None, None
        row.delta_vs_leader = row.delta_ci_low = row.delta_ci_high = None
        row.leader_verdict = VERDICT_NO_RUN if row.n == 0 else VERDICT_INSUFFICIENT if row.n < 2 else ""
    leader = comparison_leader(rows)
    if leader is None:  # every row has n < 2: nothing can be compared
        return
    compared = [r for r in rows if r is not leader and r.n >= 2]
    differences = [welch(r.values, leader.values) for r in compared]
    adjusted = holm([d.p_value for d in differences])
    for row in rows:
        row.leader = leader.recipe
        if row.mean is not None:
            row.delta_vs_leader = row.mean - leader.mean
    leader.leader_verdict, leader.delta_vs_leader = VERDICT_LEADER, 0.0
    for row, difference, p_holm in zip(compared, differences, adjusted, strict=True):
        row.delta_ci_low, row.delta_ci_high = difference.ci_low, difference.ci_high
        row.p_vs_leader, row.p_vs_leader_holm = difference.p_value, p_holm
        row.tied_with_leader = p_holm >= SIGNIFICANCE
        row.leader_verdict = VERDICT_NOT_RESOLVED if row.tied_with_leader else VERDICT_RESOLVED


def _percent(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f}"


def _accuracy_cell(row: Row) -> str:
    if row.mean is None:
        return "no finished run"
    if row.std is None:
        return f"{_percent(row.mean)} (n=1, no spread)"
    return f"{_percent(row.mean)} ± {_percent(row.std)}"


def _bound(value: float) -> str:
    """An accuracy interval bound for display: an accuracy is in [0, 100] %, so a t-interval
    reaching past either end is shown cut there and marked (the stored value is not cut)."""
    if value < 0:
        return "0*"
    if value > 1:
        return "100*"
    return _percent(value)


def _interval_cell(low: float | None, high: float | None) -> str:
    return "n<2" if low is None else f"[{_bound(low)}, {_bound(high)}]"


def _reported_cell(row: Row) -> str:
    """The claim, ✓ inside our prediction interval or ✗ outside, and mean − claim in pp."""
    if row.reported is None:
        return "–"
    mark = "" if row.reported_in_pi is None else (" ✓" if row.reported_in_pi else " ✗")
    difference = "" if row.difference is None else f" ({100 * row.difference:+.2f})"
    return f"{_percent(row.reported)}{mark}{difference}"


def p_text(p_value: float | None) -> str:
    """A p-value as a reader needs it: two decimals, three below 0.1 (so 0.050 is not read as
    0.05), "<0.001" below 0.001."""
    if p_value is None:
        return "–"
    if p_value < 0.001:
        return "<0.001"
    return f"{p_value:.3f}" if p_value < 0.1 else f"{p_value:.2f}"


def _leader_cell(row: Row) -> str:
    """mean − leader's mean in pp with its Welch 95% CI and the Holm-adjusted p."""
    if row.leader_verdict in (VERDICT_LEADER, VERDICT_INSUFFICIENT, VERDICT_NO_RUN):
        return {VERDICT_INSUFFICIENT: "n<2: not compared", VERDICT_NO_RUN: "–"}.get(
            row.leader_verdict, row.leader_verdict
        )
    interval = "" if row.delta_ci_low is None else f" [{100 * row.delta_ci_low:+.2f}, {100 * row.delta_ci_high:+.2f}]"
    p_value = p_text(row.p_vs_leader_holm)
    return f"{100 * row.delta_vs_leader:+.2f}{interval} p{'' if p_value.startswith('<') else '='}{p_value}"


COLUMNS = (
    "#",
    "recipe",
    "n",
    "acc % mean ± std",
    "95% CI of mean",
    "95% PI, one run",
    "min–max",
    "claimed % (Δ pp)",
    "vs leader pp [95% CI], Holm p",
    "params",
    "s/run",
    "img/s",
    "epochs",
)


def recipe_cell(row: Row) -> str:
    """The recipe's name; a stale row's says so, with the config hash its runs had."""
    return f"{row.recipe} (stale {row.config_hash[:8]})" if row.stale else row.recipe


def table_cells(row: Row) -> list[str]:
    return [
        str(row.rank) + (" ≈" if row.leader_verdict == VERDICT_NOT_RESOLVED else ""),
        recipe_cell(row),
        str(row.n) + (f" (+{row.failed} failed)" if row.failed else ""),
        _accuracy_cell(row),
        _interval_cell(row.ci_low, row.ci_high),
        _interval_cell(row.pi_low, row.pi_high),
        "–" if row.minimum is None else f"{_percent(row.minimum)}–{_percent(row.maximum)}",
        _reported_cell(row),
        _leader_cell(row),
        "–" if row.params is None else f"{row.params:,}",
        "–" if row.train_seconds is None else f"{row.train_seconds:.0f}",
        "–" if row.images_per_second is None else f"{row.images_per_second:,.0f}",
        "–" if row.epochs_run is None else f"{row.epochs_run:.1f}",
    ]


LEGEND = (
    "n = finished seeds (a crashed run or a NaN/infinite accuracy counts as failed); mean ± sample std "
    "over them. 95% CI of mean: where the recipe's mean lies (t-based). 95% PI, one run: where one more "
    "run would land, mean ± t·s·√(1+1/n); it answers whether a single-run claim fits our runs. "
    "Claimed = the report's single-run number, ✓ inside our PI, ✗ outside; (Δ) = our mean − claimed, "
    "in percentage points. vs leader = mean − the leader's mean in pp, Welch 95% CI, Welch's t-test p "
    "Holm-adjusted across this table's comparisons; ≈ = not resolved from the leader at these n "
    f"(Holm p ≥ {SIGNIFICANCE}), which does not mean equal. The leader is the best recipe with n ≥ 2; "
    "n<2 rows are not compared. 0* / 100*: an interval bound past 0 or 100 %, shown cut there (few seeds, "
    "wide spread). s/run = training seconds per run. How to read it: docs/statistics.md."
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


def update_readme(path, rows: list[Row], *, command: str, origin: str = "") -> bool:
    """Rewrite the README block ``leaderboard:<profile>`` with ``rows`` (one profile), headed by
    where they come from (``origin``: which runs, see ``RunSources.origin``) and the command that
    made them; True if the file changed."""
    from harness.readme import replace_block

    profile = rows[0].profile
    head = " ".join(part for part in (header_line(rows), origin, f"Produced by `{command}`.") if part)
    return replace_block(path, f"leaderboard:{profile}", f"{head}\n\n{to_markdown(rows)}")


def at_least(rows: list[Row], seeds: int) -> list[Row]:
    """The rows with at least ``seeds`` finished seeds, ranked again among themselves."""
    return _ranked([r for r in rows if r.n >= seeds])


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
