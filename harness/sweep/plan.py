"""What a sweep will do: its settings, the list of runs (recipe × seed) it plans, and the order
they start in.

Planning needs only the configuration and the data's fingerprint: no Keras, no MLflow. Each
planned run carries its ``RunIdentity`` (``harness.identity``), which decides whether it is
already finished.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from harness.config import BenchConfig, Recipe
from harness.identity import RunIdentity, Variant, identify
from harness.run.devices import Gpu, device_class, keras_backend

EXECUTORS = ("local", "ray")
JIT_CHOICES = ("auto", "on", "off")
ORDERS = ("auto", "cheapest", "longest", "file")  # the order runs start in (see ``run_order``)


@dataclass(frozen=True)
class SweepSettings:
    """How to run a sweep: the budget, the seeds, where and how runs train."""

    profile: str = "full"
    seeds: int = 3  # seeds 0 … seeds-1 per recipe
    jobs: int | None = None  # runs training at once, each in its own process (None: one per GPU slot, else 1)
    jobs_per_gpu: int | str = "auto"  # runs sharing one GPU at once, or "auto": by each run's share of a GPU
    jobs_cap: bool = True  # cap --jobs by this machine's cores and memory (off: an expert's choice)
    variant: Variant = Variant()  # precision and random weights: part of each run's identity
    jit_compile: str = "auto"  # XLA: Keras decides (auto), or on / off
    executor: str = "local"  # local worker processes, or Ray tasks
    address: str | None = None  # Ray cluster to join (None: start a local one)
    gpus_per_run: float = 0.0  # Ray: the GPU share each run asks for
    data_path: str | None = None  # None: $BENCH_DATA, else Keras' download
    weights_dir: str | None = None  # pretrained backbone weights, for offline use
    system_metrics: bool = False  # log CPU/memory/GPU use as system/* metrics of each run
    log_model: bool = False  # log each trained Keras model to MLflow (large: off by default)
    order: str = "auto"  # ORDERS: the order runs start in
    time_budget: float | None = None  # seconds the command may train for (None: no limit)
    deadline: float | None = None  # time.time() when that budget ends (set when the command starts)


def variant_here(settings: SweepSettings, gpus: list[Gpu]) -> Variant:
    """The settings' variant completed with what this machine decides: the hardware class the
    runs will train on (a Ray run asks for a GPU share or none) and the Keras backend."""
    if settings.executor == "ray":
        device = "gpu" if settings.gpus_per_run > 0 else "cpu"
    else:
        device = device_class(gpus)
    return replace(settings.variant, device=device, backend=keras_backend())


WORKER_MEMORY_BYTES = 3 * 2**30  # what one CPU worker can take: TensorFlow, the dataset as float32, a model


def machine_capacity() -> tuple[int, int | None]:
    """(cores this process may use, bytes of memory available now; None where unknown)."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        for line in open("/proc/meminfo"):  # noqa: SIM115  read once
            if line.startswith("MemAvailable:"):
                return cores, int(line.split()[1]) * 1024
    except OSError:
        pass
    return cores, None


def runs_per_gpu(settings: SweepSettings) -> int:
    """The most runs one GPU holds at once: ``--jobs-per-gpu N``, or under ``auto`` the packing
    that was measured (``harness.cost.gpu_model.MAX_RUNS_PER_GPU``; each run's share decides how many
    of them actually share a GPU)."""
    from harness.cost.gpu_model import MAX_RUNS_PER_GPU

    return MAX_RUNS_PER_GPU if settings.jobs_per_gpu == "auto" else int(settings.jobs_per_gpu)


def concurrent_jobs(
    settings: SweepSettings, gpus: list[Gpu], capacity: tuple[int, int | None] | None = None
) -> tuple[int, str | None]:
    """How many runs train at once, and a note when that differs from what was asked: on GPUs,
    one run per GPU slot by default and never more than the slots (``runs_per_gpu`` per GPU);
    on a CPU, never more than its cores or than its free memory holds workers (an overloaded
    machine thrashes, the OOM killer takes workers, and stopping takes minutes), unless
    ``jobs_cap`` is off."""
    if settings.executor == "ray":
        return settings.jobs or 1, None
    if gpus:
        slots = len(gpus) * runs_per_gpu(settings)
        if settings.jobs is None:
            return slots, None
        if settings.jobs > slots:
            return slots, (
                f"--jobs {settings.jobs} capped to {slots}: {len(gpus)} GPU(s) × --jobs-per-gpu {settings.jobs_per_gpu}"
                + (f" (at most {slots // len(gpus)} runs share a GPU)" if settings.jobs_per_gpu == "auto" else "")
            )
        return settings.jobs, None
    asked = settings.jobs or 1
    if not settings.jobs_cap or asked == 1:
        return asked, None
    cores, memory = capacity or machine_capacity()
    fits = cores if memory is None else min(cores, max(1, memory // WORKER_MEMORY_BYTES))
    if asked > fits:
        free = "" if memory is None else f", {memory / 2**30:.0f} GiB free"
        return fits, f"--jobs {asked} capped to {fits}: {cores} cores{free} (--no-jobs-cap to insist)"
    return asked, None


@dataclass(frozen=True)
class RunSpec:
    """One planned run: a recipe trained with one seed under one profile."""

    recipe: Recipe
    identity: RunIdentity

    @property
    def profile(self) -> str:
        return self.identity.profile

    @property
    def seed(self) -> int:
        return self.identity.seed

    @property
    def label(self) -> str:
        """How a person names this run: 'r004-step1 seed 0'."""
        return f"{self.recipe.name} seed {self.seed}"


def plan(
    config: BenchConfig,
    recipes: list[Recipe],
    *,
    profile: str,
    seeds: list[int],
    data_fingerprint: str,
    variant: Variant = Variant(),
) -> list[RunSpec]:
    """Every (recipe, seed) under ``profile``, in file order then seed order."""
    config.profile(profile)  # an unknown profile is a ConfigError here, before anything else
    return [
        RunSpec(recipe=recipe, identity=identify(config, recipe, profile, seed, data_fingerprint, variant))
        for recipe in recipes
        for seed in seeds
    ]


def split_finished(specs: list[RunSpec], finished: set[str]) -> tuple[list[RunSpec], list[RunSpec]]:
    """(runs to train, runs already FINISHED), each in plan order: one pass over ``specs`` by
    identity (comparing specs with a list's ``in`` made a sweep of thousands quadratic)."""
    todo = [spec for spec in specs if spec.identity.identity not in finished]
    done = [spec for spec in specs if spec.identity.identity in finished]
    return todo, done


def run_order(order: str, *, jobs: int, budget: bool) -> str:
    """What ``--order auto`` means for this sweep: cheapest first under a time budget (the most
    runs finish before it), longest first with several runs at once (the long runs start early,
    so the sweep does not end with one of them alone), else the file's order. Any other value
    is itself."""
    if order != "auto":
        return order
    if budget:
        return "cheapest"
    return "longest" if jobs > 1 else "file"


def order_runs(specs: list[RunSpec], seconds: dict[str, float], order: str) -> list[RunSpec]:
    """``specs`` in ``order`` (``cheapest`` / ``longest``: by each run's estimated seconds left,
    ``seconds`` by identity; equal estimates keep the file's order, then seed order; ``file``:
    as given). Without estimates, the file's order."""
    if order not in ("cheapest", "longest") or not seconds:
        return list(specs)
    sign = 1.0 if order == "cheapest" else -1.0
    position = {spec.identity.identity: index for index, spec in enumerate(specs)}
    return sorted(specs, key=lambda s: (sign * seconds.get(s.identity.identity, 0.0), position[s.identity.identity]))
