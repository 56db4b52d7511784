"""`bench ui`: what it starts, and that one SIGTERM stops all of it (a real server on a free port)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def descendants(pid: int) -> set[int]:
    """Every live process whose chain of parents leads to ``pid`` (read from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def answers(port: int) -> bool:
    with socket.socket() as connection:
        connection.settimeout(1)
        return connection.connect_ex(("127.0.0.1", port)) == 0


class BenchUI:
    """``bench ui`` as a user starts it, in its own process, on a free port."""

    def __init__(self, store_uri: str, log: Path, *arguments: str, cwd: Path | None = None) -> None:
        self.port = free_port()
        self.log = log
        self.process = subprocess.Popen(
            # -P: as the `bench` script starts, bench itself does not import from the working directory
            [sys.executable, "-P", "-m", "harness.cli", "--tracking-uri", store_uri, "ui", "--port", str(self.port)]
            + ["--no-browser", *arguments],  # a test never opens a browser on a developer's desktop
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            cwd=cwd,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_until_ready(self, timeout: float = 180) -> str:
        """The link `bench ui` prints once the server answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            for line in self.log.read_text().splitlines():
                if line.startswith("ready: "):
                    return line.removeprefix("ready: ")
            time.sleep(0.5)
        raise AssertionError(f"bench ui did not answer within {timeout} s:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)


@pytest.fixture
def empty_store(tmp_path) -> str:
    from harness.store.tracking import Tracker

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    Tracker(uri)  # the store and its experiment, nothing in it
    return uri


def test_ui_starts_light_and_binds_to_loopback_unless_told_otherwise(empty_store, monkeypatch):
    from harness.cli import ui

    launched = []

    def fake_serve(command, environment, *, url, on_ready=None):
        launched.append((command, environment))
        on_ready()
        return 0

    monkeypatch.setattr(ui, "serve", fake_serve)
    runner = CliRunner()
    first = runner.invoke(main, ["--tracking-uri", empty_store, "ui"])
    assert first.exit_code == 0, first.output
    assert "ready: http://127.0.0.1:5000/#/experiments/1/runs?workflowType=machine_learning" in first.output
    assert runner.invoke(main, ["--tracking-uri", empty_store, "ui", "--host", "0.0.0.0"]).exit_code == 0  # noqa: S104
    assert (
        runner.invoke(main, ["--tracking-uri", empty_store, "ui", "--workers", "3", "--job-execution"]).exit_code == 0
    )
    (command, environment), (second, _), (third, asked) = launched
    assert command[1:4] == ["-P", "-m", "mlflow"] and environment["PYTHONSAFEPATH"] == "1"
    assert command[command.index("--uvicorn-opts") + 1].startswith("--app-dir ")  # not uvicorn's default, the cwd
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert command[command.index("--backend-store-uri") + 1] == empty_store
    assert command[command.index("--workers") + 1] == "1" and environment[ui.JOB_EXECUTION_ENV] == "false"
    assert second[second.index("--host") + 1] == "0.0.0.0"  # noqa: S104
    assert third[third.index("--workers") + 1] == "3" and asked[ui.JOB_EXECUTION_ENV] == "true"


@pytest.mark.parametrize(
    ("arguments", "desktop", "opened"),
    [([], True, True), ([], False, False), (["--no-browser"], True, False), (["--browser"], False, True)],
)
def test_ui_opens_the_link_on_a_desktop_and_says_what_the_link_cannot(
    empty_store, monkeypatch, arguments, desktop, opened
):
    """Once the UI answers, the model-training link is printed, with the one step it cannot take
    (MLflow 3.17 keeps its mode in the browser), and opened where a desktop is found."""
    from harness.cli import ui

    links = []
    monkeypatch.setattr(ui, "serve", lambda command, environment, *, url, on_ready=None: on_ready() or 0)
    monkeypatch.setattr(ui, "desktop_session", lambda: desktop)
    monkeypatch.setattr(ui, "open_in_browser", links.append)
    result = CliRunner().invoke(main, ["--tracking-uri", empty_store, "ui", *arguments])
    assert result.exit_code == 0, result.output
    assert "until 'Model training' is chosen once at the top left of any page" in result.output
    assert links == (["http://127.0.0.1:5000/#/experiments/1/runs?workflowType=machine_learning"] if opened else [])


def test_ui_on_a_folder_with_no_store_says_so(tmp_path):
    result = CliRunner().invoke(main, ["--tracking-uri", f"sqlite:///{tmp_path}/none.db", "ui"])
    assert result.exit_code == 1 and "no MLflow store at" in result.output
    assert not (tmp_path / "none.db").exists()


@pytest.mark.slow
def test_sigterm_to_bench_ui_stops_the_server_and_every_child(empty_store, tmp_path):
    bench = BenchUI(empty_store, tmp_path / "ui.log")
    try:
        bench.wait_until_ready()
        assert answers(bench.port)
        started = descendants(bench.process.pid)
        assert started, "bench ui started no server process"
    finally:
        bench.stop()
    assert bench.process.returncode == 0, bench.log.read_text()
    deadline = time.monotonic() + 15
    while answers(bench.port) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not answers(bench.port), "the port still answers after bench ui was stopped"
    survivors = [pid for pid in started if alive(pid)]
    assert not survivors, f"still running after SIGTERM: {survivors}"


def test_a_busy_port_is_one_line_naming_it(empty_store):
    """Another server on the port answered the health check in place of ours: `bench ui` said
    "ready" with its address and exited 0. Now it names the port and starts nothing."""
    import http.server
    import threading

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802  the handler's name is http.server's
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *args):
            pass

    other = http.server.HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    port = other.server_address[1]
    try:
        result = CliRunner().invoke(
            main, ["--tracking-uri", empty_store, "ui", "--port", str(port)], catch_exceptions=False
        )
    finally:
        other.shutdown()
        other.server_close()
    assert result.exit_code == 1, result.output
    assert f"port {port} on 127.0.0.1 is in use" in result.output and "ready:" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_server_that_exits_before_answering_is_one_error(tmp_path):
    from harness.cli import ui
    from harness.errors import HarnessError

    with pytest.raises(
        HarnessError, match="the MLflow server exited with code 3 before it answered on http://127.0.0.1:9"
    ):
        ui.serve([sys.executable, "-c", "raise SystemExit(3)"], {}, url="http://127.0.0.1:9")


PLANTED = "import pathlib\npathlib.Path({marker!r}).write_text(__name__)\nraise SystemExit('planted module imported')\n"


@pytest.mark.slow
def test_the_ui_server_never_imports_code_from_the_working_directory(empty_store, tmp_path):
    """An mlflow.py, numpy.py, uvicorn.py, … where `bench ui` runs: the server and every
    process it starts import the installed packages, never these."""
    folder = tmp_path / "work"
    folder.mkdir()
    for name in ("mlflow", "numpy", "uvicorn", "fastapi", "starlette", "sqlalchemy", "pandas", "flask"):
        (folder / f"{name}.py").write_text(PLANTED.format(marker=str(tmp_path / f"imported-{name}")))
    bench = BenchUI(empty_store, tmp_path / "ui.log", cwd=folder)
    try:
        bench.wait_until_ready()
    finally:
        bench.stop()
    assert not list(tmp_path.glob("imported-*")), bench.log.read_text()
