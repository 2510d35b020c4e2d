"""The service examples, run as real processes against real dependencies.

The "done means" test of issue 6 is here: a FastAPI service with a real redis-server
dependency; /health/ready turns 503 with the right fault code when the database stops, and
200 again when it comes back, each within one TTL.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
from health_support import ROOT, free_port, port_open, wait_until
from prometheus_client.parser import text_string_to_metric_families

from netprobe.testing import RedisServer, TcpServer, closed_port
from nplab.require import require_binary

EXAMPLES = ROOT / "examples"


@contextlib.contextmanager
def example_server(name: str, *args: str) -> Iterator[tuple[str, dict[str, str]]]:
    """Run an example server on a free port; yields its URL and, after exit, its output."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / name), *args, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    output: dict[str, str] = {}
    try:
        wait_until(
            lambda: port_open(port) or proc.poll() is not None, timeout=30, what=f"{name} to listen"
        )
        assert proc.poll() is None, proc.communicate()
        yield f"http://127.0.0.1:{port}", output
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        output["stdout"], output["stderr"] = proc.communicate()


def test_fastapi_service_readiness_follows_the_database() -> None:
    require_binary("redis-server")
    ttl = 1.0
    redis = RedisServer()
    with (
        redis,
        example_server("fastapi_health.py", f"redis://{redis.address}", "--ttl", str(ttl)) as out,
        httpx.Client(base_url=out[0], timeout=5) as client,
    ):
        ready = client.get("/health/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["database"]["status"] == "ok"
        assert client.get("/").json() == {"service": "orders"}

        redis.stop()
        stopped = time.monotonic()
        wait_until(
            lambda: client.get("/health/ready").status_code == 503,
            timeout=ttl + 1.0,  # within one TTL (+ the budget and scheduling slack)
            what="503 after the database stopped",
            step=0.05,
        )
        down_after = time.monotonic() - stopped
        body = client.get("/health/ready").json()
        fault = body["checks"]["database"]["fault"]
        assert fault["layer"] == "l4" and fault["code"] == "l4.refused", fault
        assert client.get("/health/live").status_code == 200, "liveness ignores the database"

        redis.start()
        started = time.monotonic()
        wait_until(
            lambda: client.get("/health/ready").status_code == 200,
            timeout=ttl + 1.0,
            what="200 after the database came back",
            step=0.05,
        )
        up_after = time.monotonic() - started
        metrics = client.get("/health/metrics").text
    assert down_after <= ttl + 1.0 and up_after <= ttl + 1.0
    samples = {
        (s.name, s.labels.get("dependency")): s.value
        for f in text_string_to_metric_families(metrics)
        for s in f.samples
    }
    assert samples[("probe_success", "database")] == 1.0


def test_lifespan_refuses_to_start_and_prints_the_diagnosis() -> None:
    dead = closed_port()
    out = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "lifespan_startup.py"),
            f"127.0.0.1:{dead}",
            "--timeout",
            "1",
            "--port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 3, "uvicorn's 'startup failed' status"
    assert "refusing to start: 1 of 1 dependencies not ready within 1 s" in out.stderr
    assert f"127.0.0.1:{dead}: [l4] l4.refused" in out.stderr
    assert "Traceback" not in out.stderr + out.stdout, "the diagnosis, not a server traceback"
    assert out.stderr.rstrip().endswith("Application startup failed. Exiting.")
    assert "dependencies ready" not in out.stdout, "the app's own startup never ran"


def test_lifespan_starts_when_the_dependency_is_ready(tcp_server: TcpServer) -> None:
    target = f"tcp://{tcp_server.address}"
    with example_server("lifespan_startup.py", target, "--timeout", "10") as (base, output):
        assert httpx.get(f"{base}/", timeout=5).json() == {"status": "serving"}
    assert "dependencies ready: starting" in output["stdout"]
    assert f"{target} is ready (attempt 1" in output["stderr"]
    assert "Traceback" not in output["stderr"]


def test_prometheus_scrape_once(tcp_server: TcpServer) -> None:
    dead = closed_port()
    out = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "prometheus_scrape.py"),
            "--once",
            f"tcp://{tcp_server.address}",
            f"127.0.0.1:{dead}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    families = {f.name: f for f in text_string_to_metric_families(out.stdout)}
    success = {s.labels["target"]: s.value for s in families["probe_success"].samples}
    assert success == {f"tcp://{tcp_server.address}": 1.0, f"tcp://127.0.0.1:{dead}": 0.0}
    fault = families["netprobe_fault"].samples
    assert [(s.labels["layer"], s.labels["code"]) for s in fault] == [("l4", "l4.refused")]


def test_prometheus_scrape_served_both_ways(tcp_server: TcpServer) -> None:
    target = f"tcp://{tcp_server.address}"
    with (
        example_server("prometheus_scrape.py", target) as (base, _),
        httpx.Client(base_url=base, timeout=5) as client,
    ):
        own = client.get("/health/metrics")
        assert own.status_code == 200
        names = {f.name for f in text_string_to_metric_families(own.text)}
        assert {"probe_success", "netprobe_fault", "probe_duration_seconds"} <= names

        def registry_has_success() -> bool:
            text = client.get("/metrics/").text
            return any(
                s.name == "probe_success" and s.value == 1.0
                for f in text_string_to_metric_families(text)
                for s in f.samples
            )

        wait_until(registry_has_success, timeout=5, what="the collector's series")
