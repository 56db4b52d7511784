"""Live progress for a sweep with rich: runs done / total with ETA, and the current run's epochs."""

from __future__ import annotations

from harness.executors import Outcome, Progress
from harness.plan import RunSpec


class RichProgress(Progress):
    """Two bars on stderr: the sweep and the run in flight (with its latest validation accuracy)."""

    def __init__(self, console) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as Bars

        self.console = console
        self.bars = Bars(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
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
        self.console.print(message)

    def sweep_planned(self, total: int, todo: int) -> None:
        skipped = total - todo
        detail = f"({skipped} already finished)" if skipped else ""
        self.sweep_task = self.bars.add_task("sweep", total=todo, detail=detail)
        if todo == 0:
            self.console.print(f"All {total} runs already finished: nothing to train.")

    def run_started(self, spec: RunSpec, index: int, total: int) -> None:
        self.run_tasks[spec.identity.identity] = self.bars.add_task(spec.label, total=None, detail="starting")

    def epochs_planned(self, spec: RunSpec, epochs: int) -> None:
        self.bars.update(self.run_tasks[spec.identity.identity], total=epochs, detail="")

    def epoch_done(self, spec: RunSpec, epoch: int, logs: dict[str, float]) -> None:
        detail = f"val_acc {logs['val_accuracy']:.3f}" if "val_accuracy" in logs else ""
        self.bars.update(self.run_tasks[spec.identity.identity], completed=epoch, detail=detail)

    def run_ended(self, outcome: Outcome) -> None:
        name = outcome.spec.label
        if outcome.status == "FINISHED":
            self.console.print(
                f"[green]✓[/green] {name}: test accuracy {outcome.test_accuracy:.4f} ({outcome.seconds:.0f} s)"
            )
        else:
            self.console.print(f"[red]✗ {outcome.status}[/red] {name}: {outcome.reason}")
        task = self.run_tasks.pop(outcome.spec.identity.identity, None)
        if task is not None:
            self.bars.remove_task(task)
        self.bars.advance(self.sweep_task)
