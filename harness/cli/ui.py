"""``bench ui``: the MLflow UI on this harness's store, started light and stopped whole.

``mlflow server`` starts uvicorn (4 workers by default) and, unless told otherwise, a pool of job
consumers for GenAI evaluation jobs: on a 2-core machine it takes half a minute to answer, and
signalling the process that started it left some of them serving. Here the server runs with one
worker and no job consumers unless asked, in a process group of its own; Ctrl-C, SIGTERM or SIGHUP
to ``bench ui`` stops that whole group (SIGTERM, then SIGKILL for anything still there after a
grace period), so nothing keeps the port.

The server never runs code from the folder ``bench ui`` is started in (an ``mlflow.py`` or
``numpy.py`` there would be imported by a plain ``python -m mlflow``): it starts with ``-P``, its
descendants inherit ``PYTHONSAFEPATH=1``, and uvicorn's ``--app-dir`` (the working directory by
default) is an empty folder of its own. A port already in use is refused before the server
starts, and a server that exits before it answers is one error line.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import click

from harness.cli.options import Context, pass_context
from harness.errors import HarnessError

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
GRACE_SECONDS = 10.0  # how long the server may take to stop before it is killed
JOB_EXECUTION_ENV = "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"  # MLflow's switch for its huey job consumers
MODEL_TRAINING = "workflowType=machine_learning"  # the UI's "Model training" mode, in a link


def server_command(tracking_uri: str, host: str, port: int, workers: int, *, app_dir: str) -> list[str]:
    """``mlflow server`` on this store (``mlflow ui`` is the same command), with the working
    directory off its import path: ``-P``, and uvicorn's ``--app-dir`` (which it puts first on
    the import path, the working directory by default) set to ``app_dir``, an empty folder."""
    return [
        sys.executable,
        "-P",
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        tracking_uri,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--uvicorn-opts",
        f"--app-dir {shlex.quote(app_dir)}",
    ]


def server_environment(job_execution: bool) -> dict[str, str]:
    """This process's environment, with MLflow's job consumers off unless ``job_execution``, and
    ``PYTHONSAFEPATH=1`` so that no Python process the server starts imports from the working
    directory (uvicorn and its workers, job consumers)."""
    return {**os.environ, JOB_EXECUTION_ENV: "true" if job_execution else "false", "PYTHONSAFEPATH": "1"}


def check_port_free(host: str, port: int) -> None:
    """``HarnessError`` naming the port when something already listens on it: the server would
    fail to bind, and the one already there would answer in its place."""
    import socket  # here, not at the top: `bench --help` imports this module

    try:
        family, kind, protocol, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as error:
        raise HarnessError(f"--host {host}: not an address this machine can bind ({error.strerror})") from None
    with socket.socket(family, kind, protocol) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: a port in TIME_WAIT is free
        try:
            probe.bind(address)
        except OSError as error:
            raise HarnessError(
                f"port {port} on {host} is in use ({error.strerror}): stop what serves it, or pass --port N"
            ) from None


def base_url(host: str, port: int) -> str:
    """Where a browser on this machine reaches a server bound to ``host``."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104  a bind address, not a bind
    return f"http://{shown}:{port}"


def runs_url(host: str, port: int, experiment_id: str | None) -> str:
    """The experiment's run list in "Model training" mode (a fresh browser opens MLflow 3 in its
    GenAI mode, which has no run list; the experiment's kind tag is not read by every UI version)."""
    if experiment_id is None:
        return f"{base_url(host, port)}/#/experiments?{MODEL_TRAINING}"
    return f"{base_url(host, port)}/#/experiments/{experiment_id}/runs?{MODEL_TRAINING}"


# What the printed link cannot do: MLflow 3.17 keeps its mode in the browser, not in a link.
MODE_TIP = (
    "The link opens the run list in MLflow's Model training mode; runs opened from it show in GenAI mode "
    "('Evaluations') until 'Model training' is chosen once at the top left of any page (the browser keeps it)."
)


def desktop_session() -> bool:
    """Whether a person's desktop is here to open a browser on (not a server, a container or CI)."""
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def open_in_browser(url: str) -> bool:
    """Open ``url`` in the desktop's browser; False where no browser is known (nothing raised)."""
    import webbrowser

    try:
        return webbrowser.open(url)
    except webbrowser.Error:
        return False


def answers(url: str, timeout: float = 2.0) -> bool:
    """Whether the server at ``url`` answers its health check."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as response:  # noqa: S310  our own http URL
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_group(group: int, grace: float = GRACE_SECONDS) -> None:
    """SIGTERM every process of ``group``, then SIGKILL whatever is still there after ``grace``."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _group_alive(group) and time.monotonic() < deadline:
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)


def serve(
    command: list[str],
    environment: dict[str, str],
    *,
    url: str,
    on_ready: Callable[[], None] | None = None,
) -> int:
    """Run the server until it exits or this process is asked to stop; either way its whole
    process group is gone when this returns. Returns 0 when stopped by a signal, else the
    server's exit code; a server that exits before it ever answered is a ``HarnessError``.
    ``on_ready`` is called once when ``url`` first answers while the server runs."""
    stopping: list[int] = []
    process: subprocess.Popen | None = None

    def stop(signum, frame) -> None:
        stopping.append(signum)
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)

    previous = {number: signal.signal(number, stop) for number in STOP_SIGNALS}
    try:
        process = subprocess.Popen(command, env=environment, start_new_session=True)
        if stopping:  # a signal arrived while it was starting
            stop(stopping[0], None)
        ready = False
        while True:
            try:
                code = process.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if not ready and not stopping and answers(url, timeout=0.5) and process.poll() is None:
                    ready = True
                    if on_ready is not None:
                        on_ready()
        if stopping:
            return 0
        if not ready:
            raise HarnessError(f"the MLflow server exited with code {code} before it answered on {url} (see above)")
        return code
    finally:
        if process is not None:
            stop_group(process.pid)
        for number, handler in previous.items():
            signal.signal(number, handler)


@click.command("ui")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to bind; 0.0.0.0 exposes the UI to your network."
)
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True, help="Port to listen on.")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="uvicorn worker processes serving the UI (MLflow's own default is 4; one is plenty for one person).",
)
@click.option(
    "--job-execution",
    is_flag=True,
    help="Also start MLflow's job consumers (only its GenAI evaluation jobs need them; off, the UI starts faster).",
)
@click.option(
    "--browser/--no-browser",
    default=None,
    help="Open the experiment's link in this desktop's web browser once the UI answers [default: when a desktop "
    "session is found: DISPLAY or WAYLAND_DISPLAY, macOS, Windows].",
)
@pass_context
def ui_command(context: Context, host: str, port: int, workers: int, job_execution: bool, browser: bool | None) -> None:
    """Open the MLflow UI on this harness's store (the same --tracking-uri resolution as runs).

    Prints the experiment's run list in MLflow's "Model training" mode (and opens it on a
    desktop). One Ctrl-C or SIGTERM stops the server and every process it started.
    """
    import tempfile

    from harness.store.connection import ExperimentMissing, fold_mlflow_errors, redacted, resolve_tracking_uri
    from harness.store.tracking import open_tracker

    uri = resolve_tracking_uri(context.tracking_uri)
    fold_mlflow_errors(not context.debug)
    if uri.startswith(("http://", "https://")):
        raise click.UsageError(f"{redacted(uri)} is a tracking server: open it in a browser instead")
    try:
        experiment_id = open_tracker(uri, context.experiment, create=False).experiment_id
    except ExperimentMissing:
        experiment_id = None  # a store without this experiment: the UI still shows what it has
    check_port_free(host, port)
    link = runs_url(host, port, experiment_id)
    url = base_url(host, port)
    click.echo(f"MLflow UI for {redacted(uri)}: starting on {url} (Ctrl-C to stop) …", err=True)

    def ready() -> None:
        click.echo(f"ready: {link}", err=True)
        click.echo(MODE_TIP, err=True)
        if browser or (browser is None and desktop_session()):
            open_in_browser(link)

    with tempfile.TemporaryDirectory(prefix="bench-ui-") as empty:  # the server's app dir: nothing to import
        code = serve(
            server_command(uri, host, port, workers, app_dir=empty),
            server_environment(job_execution),
            url=url,
            on_ready=ready,
        )
    sys.exit(code)
