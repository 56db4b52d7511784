"""Live progress for a sweep with rich: runs done / total with an ETA from the cost estimate,
and the epochs of each run in flight."""

from __future__ import annotations

import time

from harness.executors import Outcome, Progress
from harness.plan import RunSpec


class Eta:
    """The sweep's remaining time: the estimated seconds of the runs not finished yet, scaled by
    how the finished runs compared with their estimates (actual / estimated), divided by the
    runs training at once. Known from the start when the sweep could be estimated."""

    def __init__(self) -> None:
        self.estimates: dict[str, float] = {}
        self.started: dict[str, float] = {}
        self.actual = self.expected = 0.0
        self.done: set[str] = set()

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


class RichProgress(Progress):
    """Bars on stderr: the sweep (with its ETA) and each run in flight (with its latest
    validation accuracy)."""

    def __init__(self, console) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, ProgressColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as Bars
        from rich.text import Text

        eta = self.eta = Eta()
        sweep = self

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
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
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

    def estimated(self, seconds_by_identity: dict[str, float]) -> None:
        self.eta.estimates = dict(seconds_by_identity)

    def sweep_planned(self, total: int, todo: int) -> None:
        skipped = total - todo
        detail = f"({skipped} already finished)" if skipped else ""
        self.sweep_task = self.bars.add_task("sweep", total=todo, detail=detail)
        if todo == 0:
            self.console.print(f"All {total} runs already finished: nothing to train.")

    def run_started(self, spec: RunSpec, index: int, total: int) -> None:
        self.eta.started[spec.identity.identity] = time.monotonic()
        self.run_tasks[spec.identity.identity] = self.bars.add_task(spec.label, total=None, detail="starting")

    def epochs_planned(self, spec: RunSpec, epochs: int) -> None:
        self.bars.update(self.run_tasks[spec.identity.identity], total=epochs, detail="")

    def epoch_done(self, spec: RunSpec, epoch: int, logs: dict[str, float]) -> None:
        detail = f"val_acc {100 * logs['val_accuracy']:.1f}%" if "val_accuracy" in logs else ""
        self.bars.update(self.run_tasks[spec.identity.identity], completed=epoch, detail=detail)

    def run_ended(self, outcome: Outcome) -> None:
        from harness.tracking import redacted  # a failure's text may quote the store's URI

        name = outcome.spec.label
        reason = redacted(outcome.reason or "")
        self.eta.ended(outcome.spec.identity.identity, outcome.seconds)
        if outcome.status == "FINISHED":
            self.console.print(
                f"[green]✓[/green] {name}: test accuracy {100 * outcome.test_accuracy:.2f}% ({outcome.seconds:.0f} s)"
                + (f" [yellow]{reason}[/yellow]" if reason else "")  # e.g. results kept locally
            )
        elif outcome.status in ("SKIPPED", "NOT_STARTED"):
            why = reason or "not started: the sweep stopped first"
            self.console.print(f"[yellow]– skipped[/yellow] {name}: {why}")
        else:
            self.console.print(f"[red]✗ {outcome.status}[/red] {name}: {reason}")
        task = self.run_tasks.pop(outcome.spec.identity.identity, None)
        if task is not None:
            self.bars.remove_task(task)
        self.bars.advance(self.sweep_task)
