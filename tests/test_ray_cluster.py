"""Ray across machines, proxied on this one: a remote cluster never gets a local store, tasks
get the driver's code, settings and paths checked, each run names its node, a second Ctrl-C
stops cleanly, and a sweep spread over two Ray nodes gives the runs a local sweep gives."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.sweep.ray_executor import RayExecutor, forwarded_environment, is_local_store, is_remote_address
from tests.test_reliability import mlflow_server as loopback_server  # noqa: F401  (a fixture, by its name)


@pytest.mark.parametrize(
    ("address", "remote"),
    [
        (None, False),
        ("auto", False),
        ("127.0.0.1:6379", False),
        ("ray://localhost:10001", False),
        ("ray://10.1.2.3:10001", True),
        ("head.cluster.example:6379", True),
    ],
)
def test_which_addresses_are_other_machines(address, remote):
    assert is_remote_address(address) is remote


def test_local_stores_are_recognised():
    assert is_local_store("sqlite:///mlflow.db") and is_local_store("file:///tmp/mlruns") and is_local_store("mlruns")
    assert not is_local_store("http://127.0.0.1:5000") and not is_local_store("databricks://profile")


def test_a_remote_cluster_with_a_local_store_is_refused_in_one_line(tmp_path, synthetic_npz, test_config):
    """Refused before Ray is joined, before the store is opened (or created) and before the
    dataset is read: one line, exit 1."""
    arguments = [
        "--config",
        str(test_config),
        "--data",
        str(synthetic_npz),
        "--tracking-uri",
        f"sqlite:///{tmp_path / 'm.db'}",
    ]
    result = CliRunner().invoke(
        main,
        [
            *arguments,
            "all",
            "--profile",
            "smoke",
            "--seeds",
            "1",
            "--executor",
            "ray",
            "--address",
            "ray://10.1.2.3:10001",
        ],
    )
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "--address ray://10.1.2.3:10001 runs on other machines" in lines[0]
    assert "mlflow server" in lines[0] and "Traceback" not in result.output
    assert not (tmp_path / "m.db").exists()


def test_the_driver_settings_travel_with_each_task():
    environment = {
        "BENCH_CACHE": "/cache",
        "KERAS_BACKEND": "jax",
        "XLA_FLAGS": "--xla_gpu_deterministic_ops=true",
        "TF_XLA_FLAGS": "--tf_xla_persistent_cache_directory=/x",
        "JAX_DEFAULT_MATMUL_PRECISION": "highest",
        "NVIDIA_TF32_OVERRIDE": "0",
        "MLFLOW_TRACKING_TOKEN": "t",
        "CUDA_VISIBLE_DEVICES": "0",
        "HOME": "/home/driver",
        "PATH": "/driver/bin",
    }
    assert forwarded_environment(environment) == {
        k: v for k, v in environment.items() if k not in ("CUDA_VISIBLE_DEVICES", "HOME", "PATH")
    }


def test_a_second_interrupt_stops_ray_tasks_at_once():
    """The sweep calls stop(grace=0) on a second Ctrl-C; RayExecutor.stop took no grace and raised
    a TypeError instead of stopping."""
    cancelled = []

    class FakeRay:
        @staticmethod
        def cancel(ref, force):
            cancelled.append((ref, force))

    executor = RayExecutor.__new__(RayExecutor)
    executor._stopping, executor._lock, executor._live, executor._refs = (
        threading.Event(),
        threading.Lock(),
        set(),
        {"r"},
    )
    executor._ray = FakeRay()
    executor.stop(grace=0)
    assert executor._stopping.is_set() and cancelled == [("r", True)]


@pytest.mark.slow
def test_a_sweep_over_two_ray_nodes_gives_the_runs_of_a_local_one(
    tmp_path,
    synthetic_npz,
    test_config,
    loopback_server,  # noqa: F811  (the fixture imported above)
):
    """Two Ray nodes on this machine (ray.cluster_utils.Cluster, one CPU each) and an MLflow
    server on loopback: the two seeds of tiny-a train one on each node, with the code and the
    benchmarks file shipped to the tasks, and give the same runs, metrics and accuracies as the
    local executor; each run names its node and the driver's commit."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'cifar10-bench[ray]')")
    from mlflow.tracking import MlflowClient
    from ray.cluster_utils import Cluster

    from tests.test_ray_executor import layout

    arguments = ["--config", str(test_config), "--data", str(synthetic_npz)]
    sweep = ["all", "--only", "tiny-a", "--profile", "smoke", "--seeds", "2", "--jobs", "2"]
    local = tmp_path / "local.db"
    result = CliRunner().invoke(main, [*arguments, "--tracking-uri", f"sqlite:///{local}", *sweep])
    assert result.exit_code == 0, result.output
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    try:
        spread = [
            *arguments,
            "--tracking-uri",
            loopback_server,
            *sweep,
            "--executor",
            "ray",
            "--address",
            cluster.address,
        ]
        result = CliRunner().invoke(main, spread)
        assert result.exit_code == 0, result.output
        assert "2 trained" in result.output
        assert "estimate ÷ measured: " in result.output and "over 2 finished run(s)" in result.output
    finally:
        ray.shutdown()
        cluster.shutdown()
    here, there = layout(f"sqlite:///{local}"), layout(loopback_server)
    assert set(here) == set(there) and len([k for k in here if k[0] == "child"]) == 2
    for key, (status, accuracy, metrics, artifacts) in here.items():
        assert there[key][0] == status == "FINISHED"
        assert there[key][1] == accuracy  # same seed, same data, same numbers
        assert there[key][2] == metrics and there[key][3] == artifacts
    client = MlflowClient(loopback_server)
    experiment = client.get_experiment_by_name("cifar10-bench")
    children = [r for r in client.search_runs([experiment.experiment_id]) if r.data.tags["bench.kind"] == "child"]
    nodes = {run.data.params["ray.node"] for run in children}
    assert len(nodes) == 2  # one seed on each node
    local_children = [
        r for r in MlflowClient(f"sqlite:///{local}").search_runs(["1"]) if r.data.tags["bench.kind"] == "child"
    ]
    assert len({run.data.params["code_commit"] for run in [*children, *local_children]}) == 1  # the driver's code ran


def test_a_joined_cluster_with_nodes_elsewhere_refuses_a_local_store():
    """A local --address can still join a cluster whose nodes are other machines: once joined,
    their addresses are checked too; a server store is accepted either way."""
    from harness.errors import HarnessError
    from harness.sweep.ray_executor import refuse_local_store_on_a_cluster

    with pytest.raises(HarnessError, match=r"Ray nodes at 10\.9\.9\.9 runs on other machines"):
        refuse_local_store_on_a_cluster("sqlite:////tmp/m.db", "auto", ["127.0.0.1", "10.9.9.9"])
    refuse_local_store_on_a_cluster("sqlite:////tmp/m.db", "auto", ["127.0.0.1"])
    refuse_local_store_on_a_cluster("http://10.0.0.1:5000", "ray://10.1.2.3:10001", ["10.9.9.9"])


def test_a_path_missing_on_a_node_fails_in_one_line_before_training(tmp_path):
    """The task checks the driver's paths on its node before starting a worker: one Error event
    naming the node and the path, exit 2; the sweep's check of every node says the same."""
    from harness.errors import HarnessError
    from harness.run import protocol
    from harness.sweep.ray_executor import _worker_on_a_ray_node

    here, gone = tmp_path / "cifar10.npz", tmp_path / "weights"
    here.touch()
    paths = {"--data": str(here), "--weights-dir": str(gone)}
    code, lines, stderr = _worker_on_a_ray_node("{}", {}, paths)
    assert code == 2 and len(lines) == 1
    event = protocol.decode(lines[0])
    assert isinstance(event, protocol.Error) and f"--weights-dir {gone} not found" in event.reason
    assert str(here) not in event.reason and stderr.decode() == event.reason

    class FakeRay:  # runs each node's check here, as Ray would there
        @staticmethod
        def remote(**_):
            def wrap(function):
                class Task:
                    def options(self, **_):
                        return self

                    def remote(self, *args):
                        return function(*args)

                return Task()

            return wrap

        @staticmethod
        def get(refs):
            return refs

    executor = RayExecutor.__new__(RayExecutor)
    executor._ray, executor.paths = FakeRay(), paths
    with pytest.raises(HarnessError, match=r"--weights-dir .*weights not found; every node needs them"):
        executor._check_nodes([{"NodeID": "a" * 56}])
    executor.paths = {"--data": str(here)}
    executor._check_nodes([{"NodeID": "a" * 56}, {"NodeID": "b" * 56}])


def test_the_code_and_the_benchmarks_file_travel_with_the_job(test_config):
    """Joining a cluster ships harness and architectures and the benchmarks file's folder (no
    stores, datasets or history); the slow test above runs tasks that read only what was shipped."""
    from types import SimpleNamespace

    import harness

    executor = RayExecutor.__new__(RayExecutor)
    executor.config = SimpleNamespace(path=test_config)
    environment = executor.runtime_env()
    assert environment["working_dir"] == str(test_config.resolve().parent)
    assert [p.rsplit("/", 1)[-1] for p in environment["py_modules"]] == ["harness", "architectures"]
    assert environment["py_modules"][0] == str(Path(harness.__file__).resolve().parent)
    assert {".git", ".venv", "*.db", "*.npz", "mlruns", "results"} <= set(environment["excludes"])


def test_the_commit_logged_is_the_code_that_ran(monkeypatch, tmp_path):
    """A worker in a checkout logs that checkout's commit; one without history (the code a Ray
    node received) logs the driver's, which the payload carries."""
    import harness.run.worker
    from harness.environment import git_commit

    ours = git_commit(Path(harness.run.worker.__file__).resolve().parent)
    assert ours != "unknown" and harness.run.worker.code_commit("driver1") == ours
    shipped = tmp_path / "runtime_resources" / "harness"
    shipped.mkdir(parents=True)
    monkeypatch.setattr(harness.run.worker, "__file__", str(shipped / "worker.py"))
    assert harness.run.worker.code_commit("driver1") == "driver1"


def test_mlflow_links_alone_make_no_worker_log():
    """Against an MLflow server, MLflow prints a run's and its experiment's links as the run ends:
    a worker that said nothing else leaves no worker.log (the two-node sweep above had one per
    run, the local sweep on sqlite none)."""
    from harness.sweep.executors import _without_startup_noise

    links = (
        "🏃 View run seed 1 · tiny-a at: http://127.0.0.1:5000/#/experiments/1/runs/04d5\n"
        "🧪 View experiment at: http://127.0.0.1:5000/#/experiments/1\n"
    )
    assert _without_startup_noise(links) == ""
    assert _without_startup_noise("Traceback: boom\n" + links) == "Traceback: boom"


def test_the_driver_machine_is_known_by_the_address_ray_gives_it(monkeypatch):
    """Ray names a node by its route out (here 192.0.2.2), which the host name need not resolve
    to: a local Ray instance on a sqlite store was refused as 'other machines'."""
    import ray.util

    from harness.sweep.ray_executor import refuse_local_store_on_a_cluster

    monkeypatch.setattr(ray.util, "get_node_ip_address", lambda: "192.0.2.77")
    refuse_local_store_on_a_cluster("sqlite:////tmp/m.db", None, ["192.0.2.77"])
