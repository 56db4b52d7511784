"""A sweep end to end, as a library function: check what every run needs, plan, run, report.

``run_sweep(config, tracker, recipes, settings, progress)`` is what ``bench run`` and ``bench
all`` call; a notebook or a test can call it without Click. It raises a ``HarnessError`` for
anything that would fail every run (missing weights, no dataset) before training anything,
and returns a ``SweepReport`` with one outcome per planned run.
"""

from __future__ import annotations

import importlib.util

from harness.config import BenchConfig, Recipe
from harness.errors import HarnessError, WeightsMissing
from harness.executors import LocalExecutor, Progress, SweepReport
from harness.plan import SweepSettings, plan
from harness.tracking import Tracker


def check_weights(recipes: list[Recipe], weights_dir: str | None, progress: Progress) -> None:
    """Every transfer recipe's pretrained weights are here (or downloaded now) and verified,
    before anything trains; else one ``WeightsMissing`` naming the first missing file, its hash
    and where it is published, and every other missing backbone."""
    import architectures
    from harness.environment import import_keras_quietly
    from harness.weights import resolve

    backbones = sorted({b for r in recipes if (b := architectures.get(r.architecture).backbone) is not None})
    if not backbones:
        return
    progress.note(f"Checking pretrained weights ({', '.join(backbones)}) …")
    import_keras_quietly()
    missing: list[tuple[str, WeightsMissing]] = []
    for backbone in backbones:
        try:
            resolve(backbone, weights_dir, download=True)
        except WeightsMissing as error:
            missing.append((backbone, error))
    if missing:
        (_, first), others = missing[0], [name for name, _ in missing[1:]]
        also = f" Also missing: {', '.join(others)}." if others else ""
        raise WeightsMissing(f"{first} (or pass --random-weights to test the plumbing).{also}")


def run_sweep(
    config: BenchConfig,
    tracker: Tracker,
    recipes: list[Recipe],
    settings: SweepSettings,
    progress: Progress | None = None,
) -> SweepReport:
    """Train every (recipe, seed) of ``recipes`` not already FINISHED in ``tracker``'s store.

    Ctrl-C (KeyboardInterrupt) during training stops the runs in flight and returns the report
    with ``interrupted`` set; finished runs are kept, and rerunning the same sweep trains only
    what is missing.
    """
    from harness.data import load_cifar10

    progress = progress or Progress()
    if not recipes:
        raise HarnessError("no recipe matches the selection")
    config.profile(settings.profile)
    if settings.system_metrics and importlib.util.find_spec("psutil") is None:
        raise HarnessError("--system-metrics needs psutil: pip install 'cifar10-bench[system-metrics]'")
    if not settings.variant.random_weights:
        check_weights(recipes, settings.weights_dir, progress)
    progress.note("Checking the dataset …")
    fingerprint = load_cifar10(settings.data_path).fingerprint
    specs = plan(
        config,
        recipes,
        profile=settings.profile,
        seeds=list(range(settings.seeds)),
        data_fingerprint=fingerprint,
        variant=settings.variant,
    )
    if settings.executor == "ray":
        if importlib.util.find_spec("ray") is None:
            raise HarnessError("--executor ray needs Ray: pip install 'cifar10-bench[ray]'")
        from harness.executors import RayExecutor

        executor: LocalExecutor = RayExecutor(config, tracker, settings, progress=progress)
    else:
        executor = LocalExecutor(config, tracker, settings, progress=progress)
    return executor.sweep(specs)
