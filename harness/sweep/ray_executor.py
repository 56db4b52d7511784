"""Runs on a Ray cluster, local or remote: each run a Ray task that starts ``python -m
harness.run.worker`` on the node Ray chose, with the driver's code and benchmarks file shipped to
it, the settings it needs forwarded, and a store and dataset every node can reach checked first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.run import protocol
from harness.run.protocol import WorkerPayload
from harness.store.connection import redacted
from harness.sweep.executors import LocalExecutor, Outcome
from harness.sweep.plan import RunSpec

# What a Ray task takes from the driver's environment (the node's own environment is the base):
# the harness's settings (BENCH_CACHE, BENCH_DATA, ...), the Keras backend, TensorFlow's, XLA's and
# JAX's flags (precision and TF32 among them), MLflow's (a server's credentials), cuBLAS's.
FORWARDED_PREFIXES = ("BENCH_", "KERAS_", "TF_", "XLA_", "JAX_", "MLFLOW_", "NVIDIA_TF32", "CUBLAS_", "TORCH_")
NOT_FORWARDED = frozenset({"CUDA_VISIBLE_DEVICES"})  # Ray gives each task its GPUs
# Left out of the code shipped to Ray nodes (runtime_env working_dir): history, environments,
# stores, results and caches; .gitignore'd files are left out by Ray too.
SHIPPED_EXCLUDES = [
    ".git",
    ".venv",
    "venv",
    "mlruns",
    "*.db",
    "results",
    ".whl",
    "**/__pycache__",
    "*.egg-info",
    "*.npz",  # a dataset is checked on each node, never shipped (CIFAR-10 is 180 MB)
    "*.tar.gz",
    "cifar-10-batches-py",
    "mlartifacts",
]
LOCAL_STORES = ("sqlite:", "file:")


def forwarded_environment(environment: dict[str, str]) -> dict[str, str]:
    """The part of the driver's ``environment`` every Ray task gets (``FORWARDED_PREFIXES``)."""
    return {
        key: value
        for key, value in environment.items()
        if key.startswith(FORWARDED_PREFIXES) and key not in NOT_FORWARDED
    }


def _this_machine() -> set[str]:
    import socket

    names = {"localhost", "127.0.0.1", "::1", "0.0.0.0", socket.gethostname(), socket.getfqdn()}  # noqa: S104
    with contextlib.suppress(OSError):
        names |= set(socket.gethostbyname_ex(socket.gethostname())[2])
    if "ray" in sys.modules:  # the address Ray gives this machine's node (its route out, not the host name's)
        with contextlib.suppress(Exception):
            import ray.util

            names.add(ray.util.get_node_ip_address())
    return names


def is_remote_address(address: str | None) -> bool:
    """Whether a Ray ``--address`` names a cluster on another machine (None, 'auto' and 'local'
    start or join one on this machine)."""
    from urllib.parse import urlsplit

    if not address or address in ("auto", "local"):
        return False
    host = urlsplit(address if "://" in address else f"ray://{address}").hostname
    return bool(host) and host not in _this_machine() and not host.startswith("127.")


def is_local_store(tracking_uri: str) -> bool:
    """A store only this machine can open: a sqlite file, a file store or a plain path."""
    return tracking_uri.startswith(LOCAL_STORES) or "://" not in tracking_uri


def refuse_local_store_on_a_cluster(tracking_uri: str, address: str | None, nodes: list[str] | None = None) -> None:
    """A Ray cluster on other machines cannot write to a store on this one: one line, before
    anything trains. ``nodes``: the addresses of the cluster's nodes, once joined."""
    from harness.errors import HarnessError

    if not is_local_store(tracking_uri):
        return
    elsewhere = sorted(set(nodes or []) - _this_machine())
    if is_remote_address(address) or elsewhere:
        where = f"--address {address}" if is_remote_address(address) else f"Ray nodes at {', '.join(elsewhere)}"
        raise HarnessError(
            f"{where} runs on other machines, which cannot write to the local store {redacted(tracking_uri)}: "
            "start `mlflow server` and pass its URL as --tracking-uri"
        )


def _node_paths(paths: dict[str, str]) -> tuple[str, list[str]]:
    """Body of a Ray task: (this node's host name, each of ``paths`` — what → path — missing here)."""
    import socket

    return socket.gethostname(), [f"{what} {path}" for what, path in paths.items() if not os.path.exists(path)]


def _worker_on_a_ray_node(
    payload: str, forwarded: dict[str, str], paths: dict[str, str], deterministic: bool = False
) -> tuple[int, list[str], bytes]:
    """Body of a Ray task: one ``python -m harness.run.worker`` process on whichever node Ray chose,
    with the GPU share Ray gave this task (``CUDA_VISIBLE_DEVICES`` is inherited), the driver's
    ``forwarded`` environment over the node's, and the worker environment every run gets
    (``harness.run.devices.run_environment``, made here so that its caches are this node's). A path
    of ``paths`` missing on this node fails the run in one line before anything starts. Returns
    the exit code, the event lines and the worker's stderr."""
    import socket
    import sys

    import ray

    from harness.run.devices import run_environment

    host, missing = _node_paths(paths)
    if missing:
        reason = f"Ray node {host}: {'; '.join(missing)} not found (every node needs the same paths)"
        return 2, [protocol.encode(protocol.Error(reason=reason))], reason.encode()
    environment = {**os.environ, **forwarded, "PYTHONUNBUFFERED": "1"}
    environment.update(run_environment(environment, deterministic=deterministic))
    environment[protocol.NODE_ENVIRONMENT] = f"{socket.gethostname()} ({ray.get_runtime_context().get_node_id()[:12]})"
    with tempfile.TemporaryFile() as log:
        process = subprocess.run(
            [sys.executable, "-P", "-m", "harness.run.worker"],
            input=dataclasses.replace(WorkerPayload.from_json(payload), launched_at=time.time()).to_json(),
            stdout=subprocess.PIPE,
            stderr=log,
            env=environment,
            text=True,
            check=False,
        )
        log.seek(0)
        return process.returncode, process.stdout.splitlines(), log.read()


class RayExecutor(LocalExecutor):
    """Each run is a Ray task (its own worker process, ``gpus_per_run`` of a GPU, so several
    small CNNs share one GPU) on a local or remote Ray cluster; every task logs to the same
    MLflow tracking store. Skips, parents, failures and interruption work as in LocalExecutor.
    Per-epoch progress is not streamed back: a run's bar completes when its task returns.

    On a cluster (``--address``): a local store is refused (``refuse_local_store_on_a_cluster``);
    the code and the benchmarks file travel with the job (``runtime_env``), so every node runs
    the driver's code and configuration; the dataset and weights paths are checked on every node
    before anything trains (one line naming the node and the path); the driver's settings travel
    with each task (``forwarded_environment``); each run logs the node it trained on
    (``ray.node``) and the commit of the code it ran."""

    def __init__(self, *args, cpus_per_run: float = 1.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        import ray

        refuse_local_store_on_a_cluster(self.tracker.tracking_uri, self.settings.address)
        # Joining a cluster: the code and the config travel with the job (Ray takes local folders
        # only at ray.init). A Ray already initialised by the caller keeps its own runtime_env, and
        # the benchmarks file is then checked on every node like the data.
        self.shipped = False
        if not ray.is_initialized():
            self.shipped = bool(self.settings.address)
            ray.init(
                address=self.settings.address,
                runtime_env=self.runtime_env() if self.shipped else None,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        self._ray = ray
        nodes = [node for node in ray.nodes() if node.get("Alive")]
        refuse_local_store_on_a_cluster(
            self.tracker.tracking_uri, self.settings.address, [node.get("NodeManagerAddress", "") for node in nodes]
        )
        self.threads = None  # Ray sizes each task's CPUs (num_cpus)
        cluster_gpus = ray.cluster_resources().get("GPU", 0)
        if cluster_gpus and not self.settings.gpus_per_run:
            self.progress.note(
                f"warning: the Ray cluster has {cluster_gpus:g} GPU(s) but --gpus-per-run is 0: "
                "every run trains on a CPU (pass e.g. --gpus-per-run 0.25)"
            )
        remote = ray.remote(num_cpus=cpus_per_run, num_gpus=self.settings.gpus_per_run, max_retries=0)
        self._task = remote(_worker_on_a_ray_node)
        self._refs: set = set()
        self.paths = self._node_paths_needed()
        self._check_nodes(nodes)

    def runtime_env(self) -> dict:
        """What the job takes to every node (Ray's job-level ``runtime_env``): the code the driver runs
        (``harness`` and ``architectures``, as py_modules) and the benchmarks file's folder as the
        task's working directory (its recipe files with it; ``SHIPPED_EXCLUDES`` and anything
        .gitignore'd left out)."""
        import architectures
        import harness

        packages = [Path(harness.__file__).resolve().parent, Path(architectures.__file__).resolve().parent]
        return {
            "py_modules": [str(package) for package in packages],
            "working_dir": str(self.config.path.resolve().parent),
            "excludes": SHIPPED_EXCLUDES,
        }

    def _node_paths_needed(self) -> dict[str, str]:
        """What each node must have at the driver's path: the dataset, the weights folder, and the
        benchmarks file unless it travels with the code."""
        from harness.run.data import resolve_data_path

        paths = {}
        if not self.shipped:
            paths["--config"] = str(self.config.path.resolve())
        data = resolve_data_path(self.settings.data_path)
        if data is not None:
            paths["--data"] = str(data)
        if self.settings.weights_dir:
            paths["--weights-dir"] = str(Path(self.settings.weights_dir).expanduser().resolve())
        return paths

    def _check_nodes(self, nodes: list[dict]) -> None:
        """Every node has every path of ``self.paths``, or one line says which does not."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from harness.errors import HarnessError

        if not self.paths:
            return
        check = self._ray.remote(num_cpus=0, max_retries=0)(_node_paths)
        refs = [
            check.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)).remote(
                self.paths
            )
            for node in nodes
        ]
        for host, missing in self._ray.get(refs):
            if missing:
                raise HarnessError(
                    f"Ray node {host}: {'; '.join(missing)} not found; every node needs them at the same path"
                )

    def payload(self, spec: RunSpec, run_id: str) -> WorkerPayload:
        """The local payload, with the benchmarks file in the task's working directory when it
        travels with the task, and the dataset's path as the driver resolved it."""
        from harness.run.data import resolve_data_path

        payload = super().payload(spec, run_id)
        data = resolve_data_path(self.settings.data_path)
        changes: dict = {"data_path": None if data is None else str(data)}
        if self.shipped:
            changes["config_path"] = self.config.path.name  # in the task's working directory
        return dataclasses.replace(payload, **changes)

    def execute(
        self, spec: RunSpec, payload: WorkerPayload, outcome: Outcome, log_path: Path, *, gpu: str | None = None
    ) -> int:
        # Ray pins the task's GPUs itself (CUDA_VISIBLE_DEVICES); the node adds the worker environment.
        forwarded = {"TF_CPP_MIN_LOG_LEVEL": "2", **forwarded_environment(dict(os.environ))}
        if self._stopping.is_set():
            return -signal.SIGTERM
        ref = self._task.remote(payload.to_json(), forwarded, self.paths, self.settings.variant.deterministic)
        with self._lock:
            self._refs.add(ref)
        try:
            returncode, lines, log = self._ray.get(ref)
        except Exception as error:  # noqa: BLE001  cancelled, worker died, node lost: the run failed
            log_path.write_text(f"Ray task ended without a result: {error}\n")
            outcome.reason = outcome.reason or f"Ray task ended without a result: {type(error).__name__}"
            return -signal.SIGKILL
        finally:
            with self._lock:
                self._refs.discard(ref)
        log_path.write_bytes(log)
        for line in lines:
            self._handle(spec, line, outcome)
        return returncode

    def stop(self, grace: float | None = None) -> None:
        """As ``LocalExecutor.stop``, and every Ray task in flight is cancelled (a second Ctrl-C
        passes ``grace=0``)."""
        super().stop(grace)
        with self._lock:
            refs = list(self._refs)
        for ref in refs:  # the worker process sees its parent die and marks its run KILLED
            with contextlib.suppress(Exception):
                self._ray.cancel(ref, force=True)
