"""Dapr's own CLI (`dapr run --runtime-path`) drives our daprd.

Environment contract:
  DAPR_CLI_BIN  path to the dapr CLI built by tests/cli/build-dapr-cli.sh   (required)
  DAPRD_BIN     path to our daprd binary                                     (required)
  DAPR_CLI_TEST_TIMEOUT  seconds one `dapr run` may take (optional, default 180)

A missing or non-executable binary fails the tests (never skips).

What `dapr run` (CLI v1.16.x, cmd/run.go + pkg/standalone/run.go) does, and so what this
exercises:
  * runs `<runtime-path>/.dapr/bin/daprd --version` at start-up (cmd/dapr.go initConfig) and
    compares the output as a semver (scheduler flag is kept only for runtime >= 1.14);
  * validates the component files in --resources-path with Dapr's own loader;
  * starts daprd with the flags built by RunConfig.getArgs(): --config, --app-protocol,
    --log-level, --app-max-concurrency -1, --placement-host-address localhost:50005,
    --resources-path, --max-body-size, --read-buffer-size, --scheduler-host-address
    localhost:50006, --app-id, --app-port 0, --dapr-http-port, --dapr-grpc-port,
    --profile-port -1, --metrics-port, --dapr-internal-grpc-port;
  * waits for the HTTP and gRPC ports to accept TCP connections, starts the app with
    DAPR_HTTP_PORT / DAPR_GRPC_PORT / APP_ID in its environment, then
    PUT /v1.0/metadata/cliPID, /appPID and /appCommand (body: plain text value) and prints
    "You're up and running! Both Dapr and your app logs will appear here." once the last
    PUT returned;
  * when the app exits it kills daprd and exits 0 ("Exited App successfully").
The app uses the official Python SDK, whose DaprClient first polls
GET /v1.0/healthz/outbound, then saves and reads back state over gRPC.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import List, Optional

import pytest

RUN_TIMEOUT = float(os.environ.get("DAPR_CLI_TEST_TIMEOUT", "180"))
APP_ID = "cli-test"
OK_MARKER = "OK-MARKER-7d1f"
UP_AND_RUNNING = "You're up and running! Both Dapr and your app logs will appear here."
SEMVER_RE = re.compile(r"^\d+\.\d+\.\d+$")
ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")

# Messages a flag parser prints when it rejects the command line: Go's flag package
# (real daprd), cobra/pflag, and clap (our daprd).
FLAG_ERRORS = [
    "unknown flag",
    "unknown shorthand flag",
    "flag provided but not defined",
    "unexpected argument",
    "invalid value",
    "a value is required for",
]

CONFIG_YAML = """\
apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: daprConfig
spec: {}
"""

STATESTORE_YAML = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: statestore
spec:
  type: state.in-memory
  version: v1
  metadata: []
"""

# The app `dapr run` starts. It uses the official SDK: DaprClient() waits on
# GET /v1.0/healthz/outbound, then a state round trip over gRPC. Afterwards it waits for
# the CLI's PUT /v1.0/metadata/{cliPID,appPID,appCommand} to show up in GET /v1.0/metadata
# and prints what it saw, plus the daprd command line the CLI used (for diagnostics).
APP_CODE = textwrap.dedent(
    """
    import json, os, sys, time, urllib.request
    from dapr.clients import DaprClient

    port = os.environ["DAPR_HTTP_PORT"]

    # daprd's command line as the CLI built it (diagnostics only).
    try:
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = [a.decode() for a in f.read().split(b"\\0") if a]
            except OSError:
                continue
            if argv and os.path.basename(argv[0]) == "daprd" and port in argv:
                print("DAPRD-ARGV=" + json.dumps(argv), flush=True)
                break
    except Exception as e:  # noqa: BLE001
        print(f"DAPRD-ARGV-ERROR={e!r}", flush=True)

    with DaprClient() as client:
        client.save_state("statestore", "cli-key", "cli-value")
        got = client.get_state("statestore", "cli-key").data
        if got != b"cli-value":
            print(f"STATE-MISMATCH {got!r}", flush=True)
            sys.exit(3)
    print("STATE-OK", flush=True)

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    extended, deadline = {}, time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with opener.open(f"http://127.0.0.1:{port}/v1.0/metadata", timeout=5) as r:
                extended = json.load(r).get("extended") or {}
        except Exception as e:  # noqa: BLE001
            print(f"METADATA-GET-ERROR={e!r}", flush=True)
        if "appCommand" in extended:
            break
        time.sleep(0.5)
    print("EXTENDED=" + json.dumps(extended), flush=True)
    print("%s", flush=True)
    """
    % OK_MARKER
)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _required_bin(var: str) -> Path:
    value = os.environ.get(var)
    if not value:
        pytest.fail(f"{var} is not set: it must point at the binary (see tests/cli/README.md)")
    path = Path(value)
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"{var}={value} is not an executable file")
    return path.resolve()


@pytest.fixture(scope="session")
def daprd_bin() -> Path:
    return _required_bin("DAPRD_BIN")


@pytest.fixture(scope="session")
def dapr_cli_bin() -> Path:
    return _required_bin("DAPR_CLI_BIN")


def _free_ports(n: int) -> List[int]:
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def _clean_env(home: Path) -> dict:
    """The caller's environment without anything Dapr-related, with a throw-away HOME."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("DAPR_")}
    env["HOME"] = str(home)
    env["NO_COLOR"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    # The SDK's health probe: fail within the run timeout if the sidecar never gets healthy.
    env["DAPR_HEALTH_TIMEOUT"] = "30"
    for var in ("no_proxy", "NO_PROXY"):
        cur = env.get(var, "")
        env[var] = ",".join(x for x in (cur, "127.0.0.1", "localhost") if x)
    return env


class CliRun:
    def __init__(self, argv: List[str], env: dict, cwd: Path):
        self.argv = argv
        self.lines: List[str] = []
        self.early_abort: Optional[str] = None
        self.timed_out = False
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: cleanup kills only what it started
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            with self._lock:
                self.lines.append(ANSI_RE.sub("", raw.decode(errors="replace").rstrip("\n")))

    def output(self) -> str:
        with self._lock:
            return "\n".join(self.lines)

    def wait(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        died_at: Optional[float] = None
        while self.proc.poll() is None:
            now = time.monotonic()
            if now >= deadline:
                self.timed_out = True
                break
            out = self.output()
            # daprd died before the app finished: the CLI would otherwise sit in its
            # 60 s + 60 s port checks; give it a moment to print, then stop.
            if died_at is None and "The daprd process exited with error code" in out \
                    and OK_MARKER not in out:
                died_at = now
            if died_at is not None and now - died_at > 5:
                self.early_abort = "daprd exited before the app finished"
                break
            time.sleep(0.2)
        if self.proc.poll() is None:
            self.stop()
        self._reader.join(timeout=10)
        return self.proc.returncode

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            # The CLI may swallow SIGTERM (its signal channel is already full when daprd
            # died early), so do not wait long before SIGKILL.
            self.proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)

    def kill_leftovers(self) -> None:
        """daprd and the app are in the CLI's process group; end any still there."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _report(run: CliRun) -> str:
    elide = lambda text: text.replace(APP_CODE, "'<APP_CODE>'")  # noqa: E731
    return (
        f"\n--- command: {elide(' '.join(run.argv))}\n"
        f"--- exit status: {run.proc.returncode}"
        f"{' (timed out)' if run.timed_out else ''}"
        f"{' (' + run.early_abort + ')' if run.early_abort else ''}\n"
        f"--- output:\n{elide(run.output())}\n--- end of output"
    )


# --------------------------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------------------------


def test_daprd_version_is_bare_semver(daprd_bin: Path) -> None:
    """The CLI runs `daprd --version` and uses its stdout as a semver (cmd/dapr.go)."""
    res = subprocess.run(
        [str(daprd_bin), "--version"], capture_output=True, text=True, timeout=30
    )
    assert res.returncode == 0, f"daprd --version exited {res.returncode}: {res.stderr}"
    out = res.stdout.strip()
    assert SEMVER_RE.match(out), f"daprd --version printed {res.stdout!r}, want a bare X.Y.Z"


def _variant_args(variant: str) -> List[str]:
    if variant == "defaults":
        # The CLI's own defaults: placement localhost:50005, scheduler localhost:50006
        # (nothing listens there), everything else as `dapr run` sets it.
        return []
    if variant == "no-control-plane":
        return ["--placement-host-address", "", "--scheduler-host-address", ""]
    if variant == "more-flags":
        # Optional `dapr run` flags that turn into extra daprd flags (RunConfig.getArgs).
        metrics, internal, profile = _free_ports(3)
        return [
            "--log-level", "debug",
            "--log-as-json",
            "--enable-api-logging",
            "--enable-profiling", "--profile-port", str(profile),
            "--metrics-port", str(metrics),
            "--dapr-internal-grpc-port", str(internal),
            "--dapr-listen-addresses", "127.0.0.1",
            "--app-max-concurrency", "4",
            "--max-body-size", "8Mi",
            "--read-buffer-size", "8Ki",
            "--enable-app-health-check",
            "--app-health-check-path", "/healthz",
            "--app-health-probe-interval", "5",
            "--app-health-probe-timeout", "500",
            "--app-health-threshold", "3",
            "--placement-host-address", "",
            "--scheduler-host-address", "",
        ]
    raise AssertionError(variant)


@pytest.mark.parametrize("variant", ["defaults", "no-control-plane", "more-flags"])
def test_dapr_run_with_runtime_path(
    tmp_path: Path, daprd_bin: Path, dapr_cli_bin: Path, variant: str
) -> None:
    # <runtime-path>/.dapr/bin/daprd is where `dapr run --runtime-path` looks for daprd
    # (pkg/standalone/common.go lookupBinaryFilePath); <runtime-path>/.dapr/config.yaml is
    # the default --config it would pass.
    runtime_path = tmp_path / "runtime"
    dapr_dir = runtime_path / ".dapr"
    (dapr_dir / "bin").mkdir(parents=True)
    os.symlink(daprd_bin, dapr_dir / "bin" / "daprd")
    config = dapr_dir / "config.yaml"
    config.write_text(CONFIG_YAML)

    resources = tmp_path / "resources"
    resources.mkdir()
    (resources / "statestore.yaml").write_text(STATESTORE_YAML)

    home = tmp_path / "home"
    home.mkdir()
    workdir = tmp_path / "work"
    workdir.mkdir()

    http_port, grpc_port = _free_ports(2)
    argv = [
        str(dapr_cli_bin), "run",
        "--runtime-path", str(runtime_path),
        "--app-id", APP_ID,
        "--dapr-http-port", str(http_port),
        "--dapr-grpc-port", str(grpc_port),
        "--resources-path", str(resources),
        "--config", str(config),
    ]
    argv += _variant_args(variant)
    argv += ["--", sys.executable, "-c", APP_CODE]

    run = CliRun(argv, _clean_env(home), workdir)
    try:
        rc = run.wait(RUN_TIMEOUT)
    finally:
        run.kill_leftovers()
    out = run.output()
    report = _report(run)

    # daprd accepted every flag the CLI passed.
    lowered = out.lower()
    bad = [e for e in FLAG_ERRORS if e in lowered]
    assert not bad, f"flag errors {bad} in the output{report}"
    assert "The daprd process exited with error code" not in out.split(OK_MARKER)[0], (
        f"daprd exited before the app finished{report}"
    )
    # The CLI found the sidecar's ports and reported it up.
    assert "Dapr sidecar is up and running." in out, f"CLI did not see the sidecar up{report}"
    # The app (official SDK: healthz/outbound, then state over gRPC) succeeded.
    assert "STATE-OK" in out, f"the app's state round trip did not succeed{report}"
    assert OK_MARKER in out, f"the app did not finish{report}"
    # The CLI's PUT /v1.0/metadata/{cliPID,appPID,appCommand} landed in GET /v1.0/metadata.
    m = re.search(r"^== APP == EXTENDED=(.*)$", out, re.M)
    assert m, f"the app printed no extended metadata{report}"
    extended = json.loads(m.group(1))
    assert extended.get("cliPID") == str(run.proc.pid), (
        f"extended metadata cliPID={extended.get('cliPID')!r}, want {run.proc.pid}: "
        f"{extended}{report}"
    )
    assert extended.get("appPID", "").isdigit(), f"no appPID in {extended}{report}"
    assert extended.get("appCommand", "").startswith(sys.executable), (
        f"appCommand={extended.get('appCommand')!r}{report}"
    )
    assert UP_AND_RUNNING in out, f"the CLI never said it was up and running{report}"
    # The app exited 0, so the CLI exits 0.
    assert "Exited App successfully" in out, f"app did not exit cleanly{report}"
    assert rc == 0, f"dapr run exited {rc}{report}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-v"]))
