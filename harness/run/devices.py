"""Where runs train: the GPUs this machine has, how many runs share one, XLA, and the
environment each worker process starts with.

The sweep process never imports TensorFlow, so it sees GPUs the way the driver does
(``nvidia-smi``, filtered by ``CUDA_VISIBLE_DEVICES``); each worker then checks that its Keras
backend sees the device it was planned for. What is decided here, and why:

- **Memory.** TensorFlow reserves nearly all memory of every visible GPU in each process, and JAX
  75% of it, so a second worker on the same GPU dies at its first allocation. Every worker starts
  with ``TF_FORCE_GPU_ALLOW_GROWTH=true`` and ``XLA_PYTHON_CLIENT_PREALLOCATE=false``: memory is
  taken as needed. (PyTorch's caching allocator does not preallocate.)
- **Placement.** With several GPUs, each worker is pinned to one with ``CUDA_VISIBLE_DEVICES``:
  a run takes the least-loaded GPU when it starts and gives it back when it ends
  (``GpuSlots``). ``--jobs-per-gpu auto`` (the default) packs runs by the share of a GPU each
  takes (``harness.cost.gpu_model.gpu_share``: a small CNN a quarter, a 224×224 fine-tune all of one),
  ``--jobs-per-gpu N`` puts N runs on each.
- **CPU threads.** N workers on one CPU would each size their thread pools to all cores; each
  gets cores / N intra-op threads instead (one worker keeps the backend's default).
- **Compilation.** Every worker shares persistent compilation caches under ``$BENCH_CACHE/xla``
  (``compile_cache_environment``), so a recipe's later seeds load what its first compiled.
- **XLA.** ``resolve_jit_compile`` is Keras' own rule for ``jit_compile="auto"`` (keras/src/
  trainers/trainer.py: off for torch, off for TensorFlow without a GPU or with op determinism,
  else on), decided before the model is built so augmentation can be built for it
  (``harness.run.augment``).
- **TF32.** On Ampere and later GPUs, TensorFlow (and JAX's default precision, and PyTorch's
  cuDNN) round float32 convolution and matmul inputs to TF32's 10-bit mantissa. ``float32``
  here means float32: every worker turns TF32 off (``set_tf32``) unless the run asked for
  ``--precision tf32``, its own identity. No effect on a CPU.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

BACKENDS = ("tensorflow", "jax", "torch")
DEVICE_CLASSES = ("cpu", "gpu")

# Set for every worker: take GPU memory as needed, so several workers can share one GPU.
MEMORY_ENVIRONMENT = {
    "TF_FORCE_GPU_ALLOW_GROWTH": "true",  # TensorFlow's GPU allocator grows instead of reserving all
    "XLA_PYTHON_CLIENT_PREALLOCATE": "false",  # JAX: no 75% preallocation
}


@dataclass(frozen=True)
class Gpu:
    """One GPU as the driver lists it; ``id`` is what CUDA_VISIBLE_DEVICES takes."""

    id: str
    name: str
    memory_mib: int | None = None


def _nvidia_smi() -> str:
    completed = subprocess.run(
        ["nvidia-smi", "--query-gpu=index,uuid,name,memory.total", "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    return completed.stdout


def visible_gpus(environment: Mapping[str, str] | None = None, query: Callable[[], str] = _nvidia_smi) -> list[Gpu]:
    """The GPUs a worker started from here may use: the driver's list (``nvidia-smi``), kept to
    those ``CUDA_VISIBLE_DEVICES`` names (by index or UUID) when it is set. No driver: none."""
    environment = os.environ if environment is None else environment
    try:
        listing = query()
    except (OSError, subprocess.SubprocessError):
        return []
    gpus, uuids = [], {}
    for line in listing.strip().splitlines():
        parts = [part.strip() for part in line.split(",")]
        if len(parts) < 3 or not parts[0].isdigit():
            continue
        memory = int(parts[3]) if len(parts) > 3 and parts[3].isdigit() else None
        gpus.append(Gpu(id=parts[0], name=parts[2], memory_mib=memory))
        uuids[parts[1]] = parts[0]
    chosen = environment.get("CUDA_VISIBLE_DEVICES")
    if chosen is None:
        return gpus
    by_id = {gpu.id: gpu for gpu in gpus}
    kept = []
    for item in (part.strip() for part in chosen.split(",")):
        if not item or item.startswith("-"):  # CUDA stops at the first invalid entry
            break
        gpu = by_id.get(uuids.get(item, item))
        if gpu is None:
            break
        kept.append(gpu)
    return kept


def device_class(gpus: list[Gpu]) -> str:
    """'gpu' when a worker will train on a GPU, else 'cpu': part of a run's identity, since
    runs on different hardware are not bit-identical."""
    return "gpu" if gpus else "cpu"


def keras_backend(environment: Mapping[str, str] | None = None) -> str:
    """The Keras backend a worker will use, decided the way Keras decides it ($KERAS_BACKEND,
    else keras.json in $KERAS_HOME or ~/.keras, else tensorflow), without importing Keras."""
    import json
    from pathlib import Path

    environment = os.environ if environment is None else environment
    if environment.get("KERAS_BACKEND"):
        return environment["KERAS_BACKEND"]
    home = Path(environment.get("KERAS_HOME", Path.home() / ".keras"))
    try:
        return json.loads((home / "keras.json").read_text()).get("backend", "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def resolve_jit_compile(requested: str, *, backend: str, accelerator: bool, deterministic: bool = False) -> bool:
    """Whether the train step is compiled with XLA: ``on`` / ``off`` as asked; ``auto`` as
    Keras resolves it for models whose layers all support XLA (the harness builds them so)."""
    if requested in ("on", "off"):
        return requested == "on"
    if backend == "torch":
        return False
    if backend == "tensorflow" and (not accelerator or deterministic):
        return False
    return True


def threads_per_worker(jobs: int, cores: int | None = None) -> int | None:
    """Intra-op threads for each of ``jobs`` concurrent workers on this CPU (None: one worker,
    the backend's default of all cores)."""
    if jobs <= 1:
        return None
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // jobs)


# Set for every worker under --deterministic: deterministic kernels where a backend reads the
# choice from its environment before it starts (the worker also calls ``enable_determinism``).
DETERMINISM_ENVIRONMENT = {
    "TF_DETERMINISTIC_OPS": "1",
    "TF_CUDNN_DETERMINISTIC": "1",
    "CUBLAS_WORKSPACE_CONFIG": ":4096:8",  # PyTorch's deterministic cuBLAS
}
DETERMINISM_XLA_FLAG = ("--xla_gpu_deterministic_ops", "true")  # added to XLA_FLAGS, never replacing it

COMPILE_CACHE_SWITCH = "BENCH_COMPILE_CACHE"  # "off": no persistent compilation cache


def with_flag(flags: str, name: str, value: str) -> str:
    """``flags`` (an XLA_FLAGS-style string) with ``name=value`` added, unless ``name`` is set in
    it already (the user's choice stands)."""
    if any(part.split("=", 1)[0] == name for part in flags.split()):
        return flags
    return f"{flags} {name}={value}".strip()


def compile_cache_environment(base: Mapping[str, str]) -> dict[str, str]:
    """The persistent compilation caches every worker shares, under ``$BENCH_CACHE/xla`` (the
    seeds of a recipe compile the same programs, about six per run: training, validation and
    prediction, each for the full and the last partial batch; 1–16 s each on the H200,
    results/gpu):

    - JAX: its compilation cache (``JAX_COMPILATION_CACHE_DIR``), every program however quickly it
      compiled (``JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0``; the default, 1 s, leaves out the
      small CNNs' programs);
    - TensorFlow: XLA's compiled programs (``--tf_xla_persistent_cache_directory`` in
      ``TF_XLA_FLAGS``, read by TF 2.21's XLA launch path);
    - both on a GPU: XLA's autotuning results (``--xla_gpu_per_fusion_autotune_cache_dir`` in
      ``XLA_FLAGS``; known to the XLA of TF 2.21 and jaxlib 0.10, unused on a CPU).

    A value the user set already is kept; ``BENCH_COMPILE_CACHE=off`` turns all of it off."""
    if base.get(COMPILE_CACHE_SWITCH, "").lower() in ("off", "0", "false", "no"):
        return {}
    from pathlib import Path

    root = Path(base.get("BENCH_CACHE") or Path.home() / ".cache" / "cifar10-bench") / "xla"
    environment = {
        "XLA_FLAGS": with_flag(
            base.get("XLA_FLAGS", ""), "--xla_gpu_per_fusion_autotune_cache_dir", str(root / "autotune")
        ),
        "TF_XLA_FLAGS": with_flag(
            base.get("TF_XLA_FLAGS", ""), "--tf_xla_persistent_cache_directory", str(root / "tensorflow")
        ),
    }
    if not base.get("JAX_COMPILATION_CACHE_DIR"):
        environment["JAX_COMPILATION_CACHE_DIR"] = str(root / "jax")
        environment.setdefault(
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", base.get("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
        )
    return environment


def prepare_compile_cache(environment: Mapping[str, str] | None = None) -> None:
    """Create the cache folders ``compile_cache_environment`` named (in the worker, so that a Ray
    node makes its own); a folder that cannot be made leaves that cache off, never the run."""
    import contextlib
    from pathlib import Path

    environment = os.environ if environment is None else environment
    folders = [environment.get("JAX_COMPILATION_CACHE_DIR", "")]
    for name, flag in (
        ("XLA_FLAGS", "--xla_gpu_per_fusion_autotune_cache_dir"),
        ("TF_XLA_FLAGS", "--tf_xla_persistent_cache_directory"),
    ):
        folders += [part.split("=", 1)[1] for part in environment.get(name, "").split() if part.startswith(flag + "=")]
    for folder in filter(None, folders):
        with contextlib.suppress(OSError):
            Path(folder).mkdir(parents=True, exist_ok=True)


def run_environment(base: Mapping[str, str], *, deterministic: bool = False) -> dict[str, str]:
    """What every worker's environment adds to ``base``, wherever it runs (a local process or a
    Ray task): the GPU memory policy, the compilation caches, and deterministic kernels when
    asked."""
    environment = {**MEMORY_ENVIRONMENT, **compile_cache_environment(base)}
    if deterministic:
        environment.update(DETERMINISM_ENVIRONMENT)
        environment["XLA_FLAGS"] = with_flag(
            environment.get("XLA_FLAGS", base.get("XLA_FLAGS", "")), *DETERMINISM_XLA_FLAG
        )
    return environment


def worker_environment(
    base: Mapping[str, str], *, gpu: str | None = None, threads: int | None = None, deterministic: bool = False
) -> dict:
    """The environment a worker process starts with: ``base`` plus ``run_environment`` (GPU
    memory policy, compilation caches, deterministic kernels when asked), its GPU pin and its
    CPU thread budget."""
    environment = {**base, **run_environment(base, deterministic=deterministic)}
    if gpu is not None:
        environment["CUDA_VISIBLE_DEVICES"] = gpu
    if threads is not None:
        environment["OMP_NUM_THREADS"] = str(threads)
        environment["TF_NUM_INTRAOP_THREADS"] = str(threads)
        environment["TF_NUM_INTEROP_THREADS"] = "1" if threads < 2 else "2"
    return environment


class GpuSlots:
    """Which GPU each concurrent run uses: a starting run takes the least-loaded GPU (lowest id
    on ties) that has room for it, and ``release`` gives it back. Room is counted two ways: at
    most ``per_gpu`` runs on a GPU, and the shares of one GPU that its runs take add up to 1 at
    most (``--jobs-per-gpu auto``: each run's ``harness.cost.gpu_model.gpu_share``; with a fixed
    ``--jobs-per-gpu N`` every run takes 1/N). A run whose share does not fit anywhere waits, and
    runs start in the order they asked (a large run is never overtaken for ever by small ones)."""

    def __init__(self, gpus: list[str], per_gpu: int = 1) -> None:
        if per_gpu < 1:
            raise ValueError(f"per_gpu must be >= 1, got {per_gpu}")
        self.per_gpu = per_gpu
        self._load = {gpu: 0.0 for gpu in gpus}
        self._runs = {gpu: 0 for gpu in gpus}
        self._changed = threading.Condition()
        self._queue: list[object] = []

    @property
    def capacity(self) -> int:
        return len(self._load) * self.per_gpu

    def _fitting(self, share: float) -> str | None:
        order = list(self._load)
        room = [g for g in order if self._runs[g] < self.per_gpu and self._load[g] + share <= 1.0 + 1e-9]
        return min(room, key=lambda g: (self._load[g], order.index(g))) if room else None

    def acquire(self, share: float | None = None, *, stop: threading.Event | None = None) -> str | None:
        """A GPU for one more run taking ``share`` of it (default 1 / ``per_gpu``), or None when
        there are no GPUs (the run trains on the CPU). Waits while no GPU has room for the share;
        raises ``InterruptedError`` if ``stop`` is set meanwhile, ``RuntimeError`` if every slot
        is taken by count (more runs than --jobs allows)."""
        if not self._load:
            return None
        share = min(max(1.0 / self.per_gpu if share is None else share, 0.0), 1.0)
        ticket = object()
        with self._changed:
            if sum(self._runs.values()) >= self.capacity:
                raise RuntimeError(f"all {self.capacity} GPU slots are taken: more runs than --jobs allows")
            self._queue.append(ticket)
            try:
                while (gpu := self._fitting(share) if self._queue[0] is ticket else None) is None:
                    if stop is not None and stop.is_set():
                        raise InterruptedError("stopped while waiting for a GPU")
                    self._changed.wait(timeout=0.5)
                self._load[gpu] += share
                self._runs[gpu] += 1
            finally:
                self._queue.remove(ticket)
                self._changed.notify_all()
            return gpu

    def release(self, gpu: str | None, share: float | None = None) -> None:
        """Give back a run's place on ``gpu`` (``share``: what it took; default 1 / ``per_gpu``)."""
        if gpu is None:
            return
        share = min(max(1.0 / self.per_gpu if share is None else share, 0.0), 1.0)
        with self._changed:
            self._load[gpu] = max(self._load[gpu] - share, 0.0)
            self._runs[gpu] -= 1
            self._changed.notify_all()


TF32 = "tf32"  # the --precision that computes float32 with TF32 convolutions and matmuls


def keras_dtype_policy(precision: str) -> str:
    """The Keras dtype policy a --precision trains under: tf32 is float32 with TF32 matmuls."""
    return "float32" if precision == TF32 else precision


def set_tf32(backend: str, enabled: bool) -> Callable[[], None]:
    """TF32 for float32 convolutions and matmuls in this process, on or off (off: true float32,
    what ``float32`` means here); returns a function that puts the previous setting back.

    TensorFlow: ``enable_tensor_float_32_execution`` (XLA-compiled steps follow it too: it sets
    their precision config). JAX: ``jax_default_matmul_precision``, "highest" (float32) or
    "tensorfloat32" (convolutions included). PyTorch: cuBLAS and cuDNN ``allow_tf32`` (cuDNN's is
    on by default)."""
    if backend == "tensorflow":
        import tensorflow as tf

        before = tf.config.experimental.tensor_float_32_execution_enabled()
        tf.config.experimental.enable_tensor_float_32_execution(enabled)
        return lambda: tf.config.experimental.enable_tensor_float_32_execution(before)
    if backend == "jax":
        import jax

        before = jax.config.jax_default_matmul_precision
        jax.config.update("jax_default_matmul_precision", "tensorfloat32" if enabled else "highest")
        return lambda: jax.config.update("jax_default_matmul_precision", before)
    if backend == "torch":
        import torch

        before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled

        def restore() -> None:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before

        return restore
    raise ValueError(f"unknown Keras backend {backend!r}; known: {', '.join(BACKENDS)}")


def tf32_setting(backend: str) -> str:
    """The backend's own TF32 switches as they stand, in words (logged with each run)."""
    if backend == "tensorflow":
        import tensorflow as tf

        return f"tensor_float_32_execution={tf.config.experimental.tensor_float_32_execution_enabled()}"
    if backend == "jax":
        import jax

        return f"jax_default_matmul_precision={jax.config.jax_default_matmul_precision}"
    if backend == "torch":
        import torch

        return f"matmul.allow_tf32={torch.backends.cuda.matmul.allow_tf32}, cudnn.allow_tf32={torch.backends.cudnn.allow_tf32}"
    return "unknown"


def enable_determinism(backend: str) -> None:
    """Deterministic kernels in this process (``--deterministic``): same seed, same numbers on
    the same GPU too, at some speed (and, on TensorFlow, without XLA under ``auto``)."""
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    elif backend == "torch":
        import torch

        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


# How each backend gets the CUDA libraries it needs to see a GPU (none of them finds a system
# CUDA toolkit in most containers).
GPU_INSTALL = {
    "tensorflow": 'pip install -e ".[gpu]" (TensorFlow with its CUDA libraries)',
    "jax": 'pip install -U "jax[cuda13]" (jax[cuda12] for a driver older than CUDA 13)',
    "torch": "install a CUDA build of PyTorch",
}


def backend_gpus(backend: str, environment: Mapping[str, str], python: str | None = None) -> list[str]:
    """The GPUs ``backend`` sees in a fresh process started with ``environment`` (a worker's):
    what every worker of the sweep will see, found before any of them starts."""
    import json
    import sys

    code = (
        "import json; from harness.environment import accelerator_names; "
        f"print('GPUS ' + json.dumps(accelerator_names({backend!r})))"
    )
    environment = {**environment, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    try:
        completed = subprocess.run(
            [python or sys.executable, "-P", "-c", code], env=environment, capture_output=True, text=True, timeout=600
        )
    except (OSError, subprocess.SubprocessError):
        return []
    listed = [line for line in completed.stdout.splitlines() if line.startswith("GPUS ")]
    return json.loads(listed[-1][len("GPUS ") :]) if listed else []


def check_gpus_usable(backend: str, gpus: list[Gpu], seen: list[str]) -> None:
    """Fail a sweep once, before any run, when the driver lists GPUs (so every run is planned
    for one) but the Keras backend sees none (so every worker would fail): the fix in one line."""
    from harness.errors import HarnessError

    if gpus and not seen:
        listed = ", ".join(f"{gpu.id}: {gpu.name}" for gpu in gpus)
        raise HarnessError(
            f"nvidia-smi lists {len(gpus)} GPU(s) ({listed}) but {backend} sees none, so every run would fail: "
            f"{GPU_INSTALL.get(backend, 'install its CUDA build')}, or train on the CPU with CUDA_VISIBLE_DEVICES="
        )


def check_device(device: str, backend: str, seen: list[str], environment: Mapping[str, str] | None = None) -> None:
    """Fail a worker whose Keras backend does not see the device class the run was planned for
    (a broken CUDA install would otherwise train on the CPU, slowly, under a GPU identity)."""
    from harness.errors import HarnessError

    environment = os.environ if environment is None else environment
    pinned = environment.get("CUDA_VISIBLE_DEVICES", "(not set)")
    if device == "gpu" and not seen:
        raise HarnessError(
            f"this run was planned for a GPU, but {backend} sees none (CUDA_VISIBLE_DEVICES={pinned}): "
            f"{GPU_INSTALL.get(backend, 'install its CUDA build')}; `bench doctor` checks the installation"
        )
    if device == "cpu" and seen:
        raise HarnessError(
            f"this run was planned for the CPU (nvidia-smi lists no GPU), but {backend} sees {', '.join(seen)}: "
            "put nvidia-smi on PATH to train on the GPU, or set CUDA_VISIBLE_DEVICES= to train on the CPU"
        )
