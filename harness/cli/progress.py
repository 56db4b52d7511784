"""Live progress for a sweep with rich: runs done / total with an ETA from the cost estimate,
and the epochs of each run in flight."""

from __future__ import annotations

import time

from harness.sweep.executors import Outcome, Progress
from harness.sweep.plan import RunSpec


class Eta:
    """The sweep's remaining time: the estimated seconds of the runs not finished yet, scaled by
    how the finished runs compared with their estimates (actual / estimated), divided by the
    runs training at once. Known from the start when the sweep could be estimated."""

    def __init__(self) -> None:
        self.estimates: dict[str, float] = {}
        self.started: dict[str, float] = {}
        self.actual = self.expected = 0.0
        self.done: set[str] = set()
        self.finished: dict[str, float] = {}  # seconds of each run that finished, by identity

    def remaining(self, now: float | None = None) -> float | None:
        if not self.estimates:
            return None
        now = time.monotonic() if now is None else now
        scale = self.actual / self.expected if self.expected else 1.0
        left = 0.0
        for identity, seconds in self.estimates.items():
            if identity in self.done:
                continue
            running = now - self.started[identity] if identity in self.started else 0.0
            left += max(seconds * scale - running, 0.0)
        in_flight = max(len(self.started) - len(self.done & set(self.started)), 1)
        return left / in_flight

    def ended(self, identity: str, seconds: float) -> None:
        self.done.add(identity)
        if identity in self.estimates:
            self.actual += seconds
            self.expected += self.estimates[identity]

    def estimate_note(self) -> str | None:
        """The closing note: how each finished run's estimate compared with its measured seconds
        (estimated ÷ measured; None when no finished run had an estimate)."""
        import statistics

        ratios = sorted(self.estimates[i] / s for i, s in self.finished.items() if i in self.estimates and s > 0)
        if not ratios:
            return None
        return (
            f"estimate ÷ measured: {ratios[0]:.2f}–{ratios[-1]:.2f} over {len(ratios)} finished run(s), median "
            f"{statistics.median(ratios):.2f} (per recipe, against every finished run: bench list --cost --calibrate)"
        )


class RichProgress(Progress):
    """Bars on stderr: the sweep (with its ETA) and each run in flight (with its latest
    validation accuracy); before them, what the sweep is busy with (a spinner on a terminal,
    plain lines elsewhere). A sweep estimated at over a day asks on a terminal, unless
    ``assume_yes`` (--yes); with no terminal to ask on, it is not confirmed."""

    def __init__(self, console, *, assume_yes: bool = False) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            ProgressColumn,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import Progress as Bars
        from rich.text import Text

        eta = self.eta = Eta()
        sweep = self
        self.assume_yes = assume_yes
        self.runs_started = 0  # runs that started training (an interrupt before the first says so)
        self.status_task = None

        class ForRuns(ProgressColumn):
            """A column of the sweep's and the runs' bars, blank on the status line."""

            def __init__(self, column: ProgressColumn) -> None:
                super().__init__()
                self.column = column

            def render(self, task) -> Text:
                return Text("") if task.fields.get("busy") else self.column.render(task)

        class StatusSpinner(SpinnerColumn):
            def render(self, task):
                return super().render(task) if task.fields.get("busy") else Text("")

        class EtaColumn(ProgressColumn):
            def render(self, task) -> Text:
                if task.id != sweep.sweep_task:
                    return Text("")
                left = eta.remaining()
                if left is None:
                    return Text("eta -:--:--")
                hours, rest = divmod(int(left), 3600)
                return Text(f"eta ~{hours}:{rest // 60:02d}:{rest % 60:02d}")

        self.console = console
        self.bars = Bars(
            StatusSpinner(),
            TextColumn("{task.description}"),
            ForRuns(BarColumn()),
            ForRuns(MofNCompleteColumn()),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            EtaColumn(),
            console=console,
        )
        self.sweep_task = None
        self.run_tasks: dict[str, object] = {}  # one bar per run in flight (several with --jobs)

    def __enter__(self) -> RichProgress:
        self.bars.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.bars.__exit__(*exc)

    def note(self, message: str) -> None:
        self.console.print(message, soft_wrap=True, markup=False, highlight=False)  # whole, as written

    @property
    def interactive(self) -> bool:
        """A person at a terminal: the bars are drawn there and a question can be answered."""
        import sys

        return bool(self.console.is_terminal and sys.stdin is not None and sys.stdin.isatty())

    def status(self, message: str | None, *, transient: bool = False) -> None:
        if not self.console.is_terminal:  # a log or a pipe: each step once, as a plain line
            if message and not transient:
                self.note(message)
            return
        if message is None:
            if self.status_task is not None:
                self.bars.remove_task(self.status_task)
                self.status_task = None
        elif self.status_task is None:
            self.status_task = self.bars.add_task(message, total=None, detail="", busy=True)
        else:
            self.bars.update(self.status_task, description=message)

    def confirm(self, question: str) -> bool:
        import click

        if self.assume_yes:
            return True
        if not self.interactive:
            return False
        self.bars.stop()  # the live display would draw over the question
        try:
            self.assume_yes = click.confirm(question, default=False, err=True)
        finally:
            self.bars.start()
        return self.assume_yes  # asked once: later rounds of --seeds auto do not ask again

    def estimated(self, seconds_by_identity: dict[str, float]) -> None:
        self.eta.estimates = dict(seconds_by_identity)

    def sweep_planned(self, total: int, todo: int) -> None:
        skipped = total - todo
        detail = f"({skipped} already finished)" if skipped else ""
        self.sweep_task = self.bars.add_task("sweep", total=todo, detail=detail)
        if todo == 0:
            self.console.print(f"All {total} runs already finished: nothing to train.")

    def run_started(self, spec: RunSpec, index: int, total: int) -> None:
        self.runs_started += 1
        self.eta.started[spec.identity.identity] = time.monotonic()
        self.run_tasks[spec.identity.identity] = self.bars.add_task(spec.label, total=None, detail="starting")

    def epochs_planned(self, spec: RunSpec, epochs: int) -> None:
        self.bars.update(self.run_tasks[spec.identity.identity], total=epochs, detail="")

    def run_resumed(self, spec: RunSpec, epoch: int) -> None:
        self.bars.update(self.run_tasks[spec.identity.identity], completed=epoch, detail=f"resumed after epoch {epoch}")

    def epoch_done(self, spec: RunSpec, epoch: int, logs: dict[str, float]) -> None:
        detail = f"val_acc {100 * logs['val_accuracy']:.1f}%" if "val_accuracy" in logs else ""
        self.bars.update(self.run_tasks[spec.identity.identity], completed=epoch, detail=detail)

    def run_ended(self, outcome: Outcome) -> None:
        from harness.store.connection import redacted  # a failure's text may quote the store's URI

        name = outcome.spec.label
        reason = redacted(outcome.reason or "")
        self.eta.ended(outcome.spec.identity.identity, outcome.seconds)
        if outcome.status == "FINISHED":
            self.eta.finished[outcome.spec.identity.identity] = outcome.seconds
            self.console.print(
                f"[green]✓[/green] {name}: test accuracy {100 * outcome.test_accuracy:.2f}% ({outcome.seconds:.0f} s)"
                + (f", resumed after epoch {outcome.resumed_from}" if outcome.resumed_from else "")
                + (f" [yellow]{reason}[/yellow]" if reason else "")  # e.g. results kept locally
            )
        elif outcome.status == "PAUSED":
            self.console.print(f"[yellow]⏸ paused[/yellow] {name}: {reason}")
        elif outcome.status in ("SKIPPED", "NOT_STARTED"):
            why = reason or "not started: the sweep stopped first"
            self.console.print(f"[yellow]– skipped[/yellow] {name}: {why}")
        else:
            self.console.print(f"[red]✗ {outcome.status}[/red] {name}: {reason}")
        task = self.run_tasks.pop(outcome.spec.identity.identity, None)
        if task is not None:
            self.bars.remove_task(task)
        self.bars.advance(self.sweep_task)
