"""Fixtures that start our `daprd` and connect the official Python Dapr SDK to it.

Environment contract (set by the test script):
  DAPRD_BIN   path to the built daprd binary                       (required)
  REDIS_PORT  port of a Redis server on 127.0.0.1                  (required for the main sidecar)
  PG_URL      PostgreSQL connection string in key=value form       (required for the main sidecar)
  DAPRD_STARTUP_TIMEOUT  seconds to wait for /v1.0/healthz           (optional, default 60)

Missing configuration makes the tests that need it fail (never skip).

Two session-scoped sidecars, each started on first use:
  * main sidecar:    --resources-path with mem-store, redis-store, pg-store and sqlite-store
  * default sidecar: no --resources-path; must expose an embedded in-memory store `statestore`
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import grpc
import pytest
import requests

from _compat import STORES

# Keep loopback traffic away from any proxy configured on the machine: the SDK's health probe
# uses urllib (honours *_proxy), grpc honours http_proxy, and requests is used with
# trust_env=False below anyway.
for _var in ("no_proxy", "NO_PROXY"):
    _cur = os.environ.get(_var, "")
    os.environ[_var] = ",".join(x for x in (_cur, "127.0.0.1", "localhost") if x)

from dapr.clients import DaprClient  # noqa: E402
from dapr.conf import settings  # noqa: E402
from dapr.proto import api_service_v1  # noqa: E402

STARTUP_TIMEOUT = float(os.environ.get("DAPRD_STARTUP_TIMEOUT", "60"))
STOP_GRACE_SECONDS = 5.0
LOG_TAIL_LINES = 80

_RUN_ID = secrets.token_hex(4)
_STARTED: List["Sidecar"] = []  # every sidecar started in this session, for reporting


# --------------------------------------------------------------------------------------------
# Sidecar process management
# --------------------------------------------------------------------------------------------


@dataclass
class Sidecar:
    name: str
    app_id: str
    http_port: int
    grpc_port: int
    internal_grpc_port: int
    public_port: int
    metrics_port: int
    log_path: Path
    resources_path: Optional[Path]
    proc: Optional[subprocess.Popen] = None
    stopping: bool = False
    death_reported: bool = False
    argv: List[str] = field(default_factory=list)

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as e:
            return f"<cannot read {self.log_path}: {e}>"
        return "\n".join(text.splitlines()[-lines:])

    def describe(self) -> str:
        return (
            f"daprd '{self.name}' (app-id {self.app_id}, http {self.http_port}, grpc {self.grpc_port})\n"
            f"command: {' '.join(self.argv)}\nlog: {self.log_path}"
        )


def _free_ports(n: int) -> List[int]:
    """Picks n distinct free ports by binding 127.0.0.1:0 (all held open until every one is chosen)."""
    with ExitStack() as stack:
        ports = []
        for _ in range(n):
            s = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
        return ports


def _require_env(name: str, why: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        pytest.fail(f"environment variable {name} is not set: {why}", pytrace=False)
    return value


def _daprd_bin() -> str:
    path = _require_env("DAPRD_BIN", "it must point at the built daprd binary")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(f"DAPRD_BIN={path!r} is not an executable file", pytrace=False)
    return path


def _component_yaml(name: str, type_: str, metadata: dict) -> str:
    """A Dapr Component manifest. Values are emitted as JSON strings, which are valid YAML
    double-quoted scalars, so no YAML library is needed and nothing needs escaping by hand."""
    lines = [
        "apiVersion: dapr.io/v1alpha1",
        "kind: Component",
        "metadata:",
        f"  name: {json.dumps(name)}",
        "spec:",
        f"  type: {json.dumps(type_)}",
        "  version: v1",
    ]
    if metadata:
        lines.append("  metadata:")
        for key, value in metadata.items():
            lines.append(f"    - name: {json.dumps(key)}")
            lines.append(f"      value: {json.dumps(str(value))}")
    else:
        lines.append("  metadata: []")
    return "\n".join(lines) + "\n"


def _start_sidecar(
    name: str, workdir: Path, resources_path: Optional[Path], env: dict, extra: Optional[List[str]] = None
) -> Sidecar:
    binary = _daprd_bin()
    http_port, grpc_port, internal_port, public_port, metrics_port = _free_ports(5)
    sidecar = Sidecar(
        name=name,
        app_id=f"sdk-{name}-{_RUN_ID}",
        http_port=http_port,
        grpc_port=grpc_port,
        internal_grpc_port=internal_port,
        public_port=public_port,
        metrics_port=metrics_port,
        log_path=workdir / "daprd.log",
        resources_path=resources_path,
    )
    argv = [
        binary,
        "--app-id", sidecar.app_id,
        "--dapr-http-port", str(http_port),
        "--dapr-grpc-port", str(grpc_port),
        "--dapr-internal-grpc-port", str(internal_port),
        "--dapr-public-port", str(public_port),
        "--metrics-port", str(metrics_port),
        "--log-level", "info",
    ]
    if resources_path is not None:
        argv += ["--resources-path", str(resources_path)]
    argv += extra or []
    sidecar.argv = argv

    log = open(sidecar.log_path, "wb")
    try:
        sidecar.proc = subprocess.Popen(
            argv, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    finally:
        log.close()  # the child keeps its own descriptor
    _STARTED.append(sidecar)

    deadline = time.monotonic() + STARTUP_TIMEOUT
    last = "no answer yet"
    with requests.Session() as http:
        http.trust_env = False
        while True:
            code = sidecar.proc.poll()
            if code is not None:
                pytest.fail(
                    f"{sidecar.describe()}\nexited with code {code} during startup; log tail:\n"
                    f"{sidecar.log_tail()}",
                    pytrace=False,
                )
            try:
                r = http.get(f"{sidecar.http_url}/v1.0/healthz", timeout=2)
                last = f"HTTP {r.status_code}"
                # Readiness is any 2xx; the exact 204 is asserted by tests of its own so that a
                # wrong status shows up as one clear failure rather than a startup timeout.
                if 200 <= r.status_code < 300:
                    return sidecar
            except requests.RequestException as e:
                last = type(e).__name__
            if time.monotonic() > deadline:
                _stop_sidecar(sidecar)
                pytest.fail(
                    f"{sidecar.describe()}\nnot ready after {STARTUP_TIMEOUT:.0f}s "
                    f"(last /v1.0/healthz: {last}); log tail:\n{sidecar.log_tail()}",
                    pytrace=False,
                )
            time.sleep(0.2)


def _stop_sidecar(sidecar: Sidecar) -> None:
    proc = sidecar.proc
    if proc is None or proc.poll() is not None:
        return
    sidecar.stopping = True
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def main_sidecar(tmp_path_factory):
    """daprd with mem-store, redis-store, pg-store and sqlite-store loaded from a resources dir."""
    redis_port = _require_env("REDIS_PORT", "the main sidecar's redis-store needs a Redis on 127.0.0.1")
    pg_url = _require_env("PG_URL", "the main sidecar's pg-store needs a PostgreSQL connection string")

    workdir = tmp_path_factory.mktemp("daprd-main")
    resources = workdir / "resources"
    resources.mkdir()
    components = {
        "mem-store": ("state.in-memory", {}),
        "redis-store": ("state.redis", {"redisHost": f"127.0.0.1:{redis_port}"}),
        "pg-store": (
            "state.postgresql",
            {"connectionString": pg_url, "tableName": f"state_{_RUN_ID}{secrets.token_hex(4)}"},
        ),
        "sqlite-store": ("state.sqlite", {"connectionString": str(workdir / "state.sqlite.db")}),
    }
    assert set(components) == set(STORES)
    for name, (type_, md) in components.items():
        (resources / f"{name}.yaml").write_text(_component_yaml(name, type_, md))

    sidecar = _start_sidecar("main", workdir, resources, dict(os.environ))
    yield sidecar
    _stop_sidecar(sidecar)


@pytest.fixture(scope="session")
def default_sidecar(tmp_path_factory):
    """daprd started without --resources-path: must come up with an embedded in-memory `statestore`.

    HOME points at an empty directory so that nothing under ~/.dapr/components can stand in for
    the embedded default."""
    workdir = tmp_path_factory.mktemp("daprd-default")
    home = workdir / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home))
    sidecar = _start_sidecar("default", workdir, None, env)
    yield sidecar
    _stop_sidecar(sidecar)


@pytest.fixture(autouse=True)
def _sidecars_still_alive():
    """After each test, report (once) a sidecar that died during the session, with its log."""
    yield
    for sc in _STARTED:
        if sc.proc is not None and not sc.stopping and not sc.death_reported:
            code = sc.proc.poll()
            if code is not None:
                sc.death_reported = True
                pytest.fail(
                    f"{sc.describe()}\nexited unexpectedly with code {code}; log tail:\n{sc.log_tail()}",
                    pytrace=False,
                )


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _STARTED:
        return
    terminalreporter.section("daprd sidecars")
    for sc in _STARTED:
        terminalreporter.write_line(f"{sc.name}: app-id {sc.app_id}, log {sc.log_path}")
        if exitstatus != 0:
            terminalreporter.write_line(f"--- last 30 log lines of '{sc.name}' ---")
            terminalreporter.write_line(sc.log_tail(30))


# --------------------------------------------------------------------------------------------
# SDK clients and HTTP sessions
# --------------------------------------------------------------------------------------------


def _sdk_client(sidecar: Sidecar) -> DaprClient:
    """A DaprClient for one sidecar.

    DaprClient.__init__ first calls DaprHealth.wait_for_sidecar(), which polls
    GET {DAPR_HTTP_ENDPOINT or http://DAPR_RUNTIME_HOST:DAPR_HTTP_PORT}/v1.0/healthz/outbound
    until a 2xx (up to DAPR_HEALTH_TIMEOUT). Those settings are global, so point them at this
    sidecar right before constructing. Assigning on the `settings` instance overrides the
    environment in SDK 1.19 (which resolves DAPR_* lazily) as well as in SDKs that read the
    environment at import time.
    """
    settings.DAPR_HTTP_ENDPOINT = sidecar.http_url
    settings.DAPR_RUNTIME_HOST = "127.0.0.1"
    settings.DAPR_HTTP_PORT = sidecar.http_port
    settings.DAPR_GRPC_PORT = sidecar.grpc_port
    settings.DAPR_API_TOKEN = None
    settings.DAPR_HEALTH_TIMEOUT = 15
    # A deadline for every unary call, so a hung sidecar fails a test instead of hanging it.
    settings.DAPR_API_TIMEOUT_SECONDS = 30
    return DaprClient(address=sidecar.grpc_address)


@pytest.fixture(scope="session")
def client(main_sidecar):
    """Official SDK client (gRPC) connected to the main sidecar."""
    c = _sdk_client(main_sidecar)
    yield c
    c.close()


@pytest.fixture(scope="session")
def default_client(default_sidecar):
    """Official SDK client (gRPC) connected to the default (embedded-store) sidecar."""
    c = _sdk_client(default_sidecar)
    yield c
    c.close()


@pytest.fixture(scope="session")
def raw_stub(main_sidecar):
    """The SDK's generated gRPC stub, for RPCs DaprClient does not wrap (DeleteBulkState)."""
    channel = grpc.insecure_channel(main_sidecar.grpc_address)
    yield api_service_v1.DaprStub(channel)
    channel.close()


class Http:
    """requests against one sidecar's HTTP API; paths are relative to http://127.0.0.1:<port>."""

    def __init__(self, base: str):
        self.base = base
        self.session = requests.Session()
        self.session.trust_env = False

    def request(self, method: str, path: str, **kw) -> requests.Response:
        kw.setdefault("timeout", 30)
        return self.session.request(method, self.base + path, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def close(self):
        self.session.close()


@pytest.fixture(scope="session")
def http(main_sidecar):
    h = Http(main_sidecar.http_url)
    yield h
    h.close()


@pytest.fixture(scope="session")
def default_http(default_sidecar):
    h = Http(default_sidecar.http_url)
    yield h
    h.close()


# --------------------------------------------------------------------------------------------
# Per-test data
# --------------------------------------------------------------------------------------------


@pytest.fixture(params=STORES)
def store(request):
    """Parametrizes a test over the four state stores of the main sidecar."""
    return request.param


@pytest.fixture
def kp():
    """A key prefix unique to this test, so tests never collide on the shared sidecar."""
    return f"t{uuid.uuid4().hex[:16]}"


# --------------------------------------------------------------------------------------------
# Two sidecars and an app, for invocation tests
# --------------------------------------------------------------------------------------------


@contextmanager
def invocation_pair(workdir: Path, name: str, app_script: Path, callee_args: List[str]):
    """Starts `app_script <port>`, a callee sidecar fronting it (`callee_args` added), and a
    caller sidecar without an app; both find each other through a nameresolution.sqlite
    file private to `workdir`. Yields an official SDK client on the caller, the caller and
    the callee, and stops everything afterwards."""
    (app_port,) = _free_ports(1)
    app = subprocess.Popen(
        [sys.executable, str(app_script), str(app_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    started = []
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", app_port), timeout=1).close()
                break
            except OSError:
                assert app.poll() is None, f"{app_script.name} exited with {app.returncode}"
                assert time.monotonic() < deadline, f"{app_script.name} did not start"
                time.sleep(0.1)
        config = workdir / "config.yaml"
        config.write_text(
            "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: nr\nspec:\n"
            "  nameResolution:\n    component: sqlite\n    configuration:\n"
            f"      connectionString: \"{workdir / 'hosts.db'}\"\n"
        )
        env = dict(os.environ)
        for role in ("callee", "caller"):
            (workdir / role).mkdir()
        callee = _start_sidecar(
            f"{name}-callee", workdir / "callee", None, env,
            extra=["--app-port", str(app_port), *callee_args, "--config", str(config)],
        )
        started.append(callee)
        caller = _start_sidecar(f"{name}-caller", workdir / "caller", None, env, extra=["--config", str(config)])
        started.append(caller)
        settings.DAPR_HTTP_ENDPOINT = caller.http_url
        settings.DAPR_API_TOKEN = None
        client = DaprClient(address=caller.grpc_address)
        try:
            yield client, caller, callee
        finally:
            client.close()
    finally:
        for sidecar in reversed(started):
            _stop_sidecar(sidecar)
        app.terminate()
        app.wait(timeout=10)
