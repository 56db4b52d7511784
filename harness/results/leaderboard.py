"""The leaderboard: rebuilt from runs alone, one row per (recipe, profile).

The runs are an MLflow store's child runs, or the per-run records under results/ read as such
runs (``harness.results.records.RunSources``): rows are built the same way from either.

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
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.results.stats import (
    describe,
    within,
)
from harness.results.verdicts import (
    SIGNIFICANCE,
    VERDICT_INSUFFICIENT,
    VERDICT_LEADER,
    VERDICT_NO_RUN,
    VERDICT_NOT_RESOLVED,
    check_claims,
    compare_with_leader,
    ranking_key,
)
from harness.store.claims import one_per_identity
from harness.store.schema import (
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
    hardware: str  # the most common of its seeds' (the row's column); every one in ``hardwares``
    commit: str  # likewise, with every one in ``commits``
    finished_at: int | None
    # Where one more run would land (95% prediction interval), and the claim checked against it.
    pi_low: float | None = None
    pi_high: float | None = None
    reported_in_pi: bool | None = None
    # This row against the leader (the best row with n >= 2): mean − leader's mean, the Welch
    # p-value Holm-adjusted across the family (``compare_with_leader``), and the Welch interval at
    # the level Holm tested it at (confidence ``delta_ci_confidence``): it excludes 0 exactly
    # where the row is resolved from the leader.
    leader: str = ""
    delta_vs_leader: float | None = None
    delta_ci_low: float | None = None
    delta_ci_high: float | None = None
    p_vs_leader_holm: float | None = None
    leader_verdict: str = ""  # leader | resolved | not resolved | insufficient (n<2) | no finished run
    delta_ci_confidence: float | None = None
    # Every seed's hardware and code commit (``hardware`` and ``commit`` above: the most common).
    hardwares: list[str] = field(default_factory=list)
    commits: list[str] = field(default_factory=list)
    # Runs of a configuration that is not the current one (--include-stale): ranked apart, marked.
    stale: bool = False


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
    """A parent run's metrics (``harness.store.schema.BOARD_*``): the few figures of ``row`` a reader
    looks for, in reading order, accuracies as fractions, interval bounds cut to [0, 1], the claim
    check as 1/0, to 6 decimals. A figure without a value (the std of one seed, the leader's p, the
    claim of a recipe whose report makes none) is NaN: every parent carries the same names."""
    from harness.store.schema import (
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
        machines = [r.data.params.get(PARAM_HARDWARE, "") for r in valid]
        commits = [r.data.params.get(PARAM_COMMIT, "") for r in valid]
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
                hardware=_most_common(machines),
                commit=_most_common(commits),
                hardwares=_distinct(machines),
                commits=_distinct(commits),
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


def _ranked(rows: list[Row]) -> list[Row]:
    """Sort the rows, number them within each board (a profile's current rows; its stale rows
    apart) and compare each board's rows with its leader."""
    rows = sorted(rows, key=ranking_key)
    rank_by_board: dict[tuple[str, bool], int] = {}
    for row in rows:
        board = (row.profile, row.stale)
        rank_by_board[board] = rank_by_board.get(board, 0) + 1
        row.rank = rank_by_board[board]
    for board in rank_by_board:
        same_board = [r for r in rows if (r.profile, r.stale) == board]
        check_claims(same_board)
        compare_with_leader(same_board)
    return rows


def only_recipes(rows: list[Row], names: set[str]) -> list[Row]:
    """The rows of ``names``, ranked again among themselves (a suite's own leader and ≈)."""
    return _ranked([r for r in rows if r.recipe in names])


def _distinct(values: list[str]) -> list[str]:
    """Every non-empty value once, sorted."""
    return sorted({v for v in values if v})


def _most_common(values: list[str]) -> str:
    values = [v for v in values if v]
    return max(sorted(set(values)), key=values.count) if values else ""


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
    """mean − leader's mean in pp with Welch's interval at Holm's level and the Holm-adjusted p."""
    if row.leader_verdict in (VERDICT_LEADER, VERDICT_INSUFFICIENT, VERDICT_NO_RUN):
        return {VERDICT_INSUFFICIENT: "n<2: not compared", VERDICT_NO_RUN: "–"}.get(
            row.leader_verdict, row.leader_verdict
        )
    interval = "" if row.delta_ci_low is None else f" [{100 * row.delta_ci_low:+.2f}, {100 * row.delta_ci_high:+.2f}]"
    p_value = p_text(row.p_vs_leader_holm)
    return f"{100 * row.delta_vs_leader:+.2f}{interval} p{'' if p_value.startswith('<') else '='}{p_value}"


CLAIM_COLUMN = "claimed % (Δ pp)"
COLUMNS = (
    "#",
    "recipe",
    "n",
    "acc % mean ± std",
    "95% CI of mean",
    "95% PI, one run",
    "min–max",
    CLAIM_COLUMN,
    "vs leader pp [Holm CI], Holm p",
    "params",
    "s/run",
    "img/s",
    "epochs",
)


# The terminal's default layout: what a reader needs first, in 100 columns (``--wide``: every column).
COMPACT_CLAIM_COLUMN = "claim %"
COMPACT_COLUMNS = (
    "#",
    "recipe",
    "n",
    "mean ± std %",
    "95% CI",
    "95% PI (1 run)",
    COMPACT_CLAIM_COLUMN,
    "vs leader pp",
)


def compact_cells(row: Row, *, claims: bool = True) -> list[str]:
    """A row in ``COMPACT_COLUMNS``: the claim with its mark only (the mean beside it gives the
    gap), the gap to the leader with its Holm p only (the interval is in ``--wide`` and the files)."""
    full = dict(zip(COLUMNS, table_cells(row), strict=True))
    claim = "–" if row.reported is None else full[CLAIM_COLUMN].split(" (")[0]
    if row.leader_verdict in (VERDICT_LEADER, VERDICT_INSUFFICIENT, VERDICT_NO_RUN):
        leader = "n<2" if row.leader_verdict == VERDICT_INSUFFICIENT else _leader_cell(row)
    else:
        p_value = p_text(row.p_vs_leader_holm)
        leader = f"{100 * row.delta_vs_leader:+.2f} p{'' if p_value.startswith('<') else '='}{p_value}"
    accuracy = full["acc % mean ± std"].replace(", no spread", "")
    cells = [full["#"], full["recipe"], full["n"], accuracy, full["95% CI of mean"]]
    cells += [full["95% PI, one run"], claim, leader]
    return (
        cells
        if claims
        else [c for c, column in zip(cells, COMPACT_COLUMNS, strict=True) if column != COMPACT_CLAIM_COLUMN]
    )


def recipe_cell(row: Row) -> str:
    """The recipe's name; a stale row's says so, with the config hash its runs had."""
    return f"{row.recipe} (stale {row.config_hash[:8]})" if row.stale else row.recipe


def columns(*, claims: bool = True) -> tuple[str, ...]:
    """The table's columns; a budget profile's table has no claim column."""
    return COLUMNS if claims else tuple(c for c in COLUMNS if c != CLAIM_COLUMN)


def compact_columns(*, claims: bool = True) -> tuple[str, ...]:
    """The compact table's columns (the terminal's and the README's); without claims, no claim column."""
    return COMPACT_COLUMNS if claims else tuple(c for c in COMPACT_COLUMNS if c != COMPACT_CLAIM_COLUMN)


def table_cells(row: Row, *, claims: bool = True) -> list[str]:
    cells = [
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
    return cells if claims else [cell for cell, column in zip(cells, COLUMNS, strict=True) if column != CLAIM_COLUMN]


# One family, one rule: every text that explains a verdict (this legend, the steps legend,
# `bench leaderboard --help`, docs/statistics.md) says the same of these.
FAMILY_WORDS = (
    "Holm-adjusted across one family: every comparison of this profile's recipes shown, each with the "
    "leader and each step with the step it was built from (bench steps), a pair counted once"
)
HOLM_CI_WORDS = (
    "Welch's interval at the level Holm tested the pair at (α/(m−j+1), m tests, j its step), so it "
    "excludes 0 exactly where the verdict is resolved"
)


def legend(*, claims: bool = True) -> str:
    """What the columns mean; without the claim sentence on a budget profile's table."""
    claim = (
        "Claimed = the report's single-run number, ✓ inside our PI, ✗ outside; (Δ) = our mean − claimed, "
        "in percentage points. "
        if claims
        else ""
    )
    return (
        "n = finished seeds (a crashed run or a NaN/infinite accuracy counts as failed); mean ± sample std "
        "over them. 95% CI of mean: where the recipe's mean lies (t-based). 95% PI, one run: where one more "
        "run would land, mean ± t·s·√(1+1/n), below 5 seeds at least as wide as with the recipe's variance "
        f"moderated toward the board's; it answers whether a single-run claim fits our runs. {claim}"
        f"vs leader = mean − the leader's mean in pp, {HOLM_CI_WORDS}; Holm p = Welch's t-test p, "
        f"{FAMILY_WORDS}; ≈ = not resolved from the leader at these n (Holm p ≥ {SIGNIFICANCE}), which does "
        "not mean equal. The leader is the best recipe with n ≥ 2; n<2 rows are not compared. 0* / 100*: "
        "an interval bound past 0 or 100 %, shown cut there (few seeds, wide spread). s/run = training "
        "seconds per run. How to read it: docs/statistics.md."
    )


COMPACT_MORE = "min–max, the gap's interval, params, s/run, img/s, epochs"


def short_legend(*, claims: bool = True) -> str:
    """The legend of the compact table (the README's and the terminal's): what answers which
    question, in a few lines (``legend`` in full, and docs/statistics.md, say the rest)."""
    claim = "; ✓ / ✗: the report's single-run claim inside / outside it" if claims else ""
    return (
        "n = finished seeds; mean ± sample std. 95% CI: where the recipe's mean lies. 95% PI: where one more "
        f"run would land{claim}. vs leader: Δ in pp and its Holm p (one family with the step table); ≈ = not "
        "resolved at these n, which is not equal. Every column: docs/statistics.md."
    )


def header_line(rows: list[Row]) -> str:
    """Profile, seeds, hardware, date and commit, all taken from the runs themselves."""
    import datetime

    profiles = sorted({r.profile for r in rows})
    seeds = sorted({len(r.seeds) for r in rows})
    seed_text = f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}–{seeds[-1]}"
    stamps = [r.finished_at for r in rows if r.finished_at]
    date = datetime.datetime.fromtimestamp(max(stamps) / 1000, datetime.UTC).strftime("%Y-%m-%d") if stamps else "–"
    # Every seed's, not each row's most common: a recipe whose seeds ran on two machines or at two
    # commits names both.
    hardware = sorted({h for r in rows for h in (r.hardwares or [r.hardware]) if h}) or ["unknown"]
    commits = sorted({c for r in rows for c in (r.commits or [r.commit]) if c}) or ["unknown"]
    return (
        f"Profile `{', '.join(profiles)}`, {seed_text} seeds per recipe, {len(rows)} recipes; "
        f"hardware: {'; '.join(hardware)}; last run finished {date}; code commit {', '.join(commits)}."
    )


def update_readme(path, rows: list[Row], *, command: str, origin: str = "", budget: str | None = None) -> bool:
    """Rewrite the README block ``leaderboard:<profile>`` with ``rows`` (one profile), headed by
    its budget line (a budget profile), where they come from (``origin``: which runs, see
    ``RunSources.origin``) and the command that made them; True if the file changed."""
    from harness.results.readme import replace_block

    profile = rows[0].profile
    head = " ".join(part for part in (header_line(rows), origin, f"Produced by `{command}`.") if part)
    if budget:
        head = f"{budget}\n\n{head}"
    return replace_block(path, f"leaderboard:{profile}", f"{head}\n\n{to_markdown(rows, budget=budget, short=True)}")


def at_least(rows: list[Row], seeds: int) -> list[Row]:
    """The rows with at least ``seeds`` finished seeds, ranked again among themselves."""
    return _ranked([r for r in rows if r.n >= seeds])


def to_markdown(rows: list[Row], *, budget: str | None = None, short: bool = False) -> str:
    """The table and its legend (``short``: the README's, in the terminal's compact columns); a
    budget profile's (``budget``: its line, printed above by the caller) has no claim column."""
    claims = budget is None
    if short:
        shown, cells = compact_columns(claims=claims), compact_cells
        caption = short_legend(claims=claims) + f" `--wide` or `--format markdown` add {COMPACT_MORE}."
    else:
        shown, cells, caption = columns(claims=claims), table_cells, legend(claims=claims)
    lines = ["| " + " | ".join(shown) + " |", "|" + "|".join("---" for _ in shown) + "|"]
    lines += ["| " + " | ".join(cells(r, claims=claims)) + " |" for r in rows]
    return "\n".join(lines) + "\n\n" + caption + "\n"


def to_csv(rows: list[Row]) -> str:
    buffer = io.StringIO()
    fields = [k for k in asdict(rows[0])] if rows else list(Row.__dataclass_fields__)
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        record: dict[str, Any] = asdict(row)
        record["seeds"] = " ".join(map(str, row.seeds))
        record["hardwares"] = "; ".join(row.hardwares)
        record["commits"] = " ".join(row.commits)
        writer.writerow(record)
    return buffer.getvalue()


def to_json(rows: list[Row]) -> str:
    return json.dumps([asdict(r) for r in rows], indent=2)


def to_rich_table(rows: list[Row], *, title: str, budget: str | None = None, wide: bool = False):
    """The terminal table: ``COMPACT_COLUMNS`` in 100 columns, or every column (``wide``); a
    budget profile's says so in the line above its columns and has no claim column."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    claims = budget is None
    heading = f"{escape(title)}\n[bold yellow]{escape(budget)}[/bold yellow]" if budget else escape(title)
    if wide:
        shown, cells = columns(claims=claims), table_cells
        table = Table(title=heading, caption=legend(claims=claims), caption_justify="left")
    else:
        shown = compact_columns(claims=claims)
        cells = compact_cells
        caption = short_legend(claims=claims) + f" --wide adds {COMPACT_MORE}."
        table = Table(
            title=heading,
            caption=caption,
            caption_justify="left",
            box=box.SIMPLE_HEAD,
            show_edge=False,
            collapse_padding=True,
        )
    body = [cells(row, claims=claims) for row in rows]
    for index, column in enumerate(shown):
        width = None if wide else max([len(column), *(len(cells_of_row[index]) for cells_of_row in body)])
        table.add_column(column, justify="left" if column == "recipe" else "right", no_wrap=True, min_width=width)
    for cells_of_row in body:
        table.add_row(*cells_of_row)
    return table
