"""What logging and metrics cost per request.

Two measurements:

1. **Over HTTP.** `deja serve` (one worker, on a fresh embedded Postgres in a temporary data
   directory; server and Postgres pinned to one CPU, wrk to the other when there are two) answers
   the same exact-hit load through `/v1/chat/completions` once per setting: `DEJA_LOG_LEVEL` INFO
   (one JSON line per request) and WARNING (none). Server CPU (Déjà and every Postgres process) per
   request is the figure; the difference is the request log line's cost.
2. **In process.** The calls one exact hit makes to the metrics (active gauge, lookup counter and
   histogram, avoided cost, request counter and histogram) and its summary log line, each timed
   over many iterations: metrics in one process (the default with one worker) and in Prometheus's
   multiprocess mode (several workers), the log line at INFO (formatted and written to a file)
   and at WARNING (filtered out). Run in subprocesses, since the metrics mode is chosen at import.

    python scripts/observability_cost.py            # both; prints a markdown table
    python scripts/observability_cost.py --seconds 20 --concurrency 8 --entries 200
"""

# ruff: noqa: S603, S607 (our own interpreter, taskset and wrk, with arguments built here)

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# --- 2. in process -------------------------------------------------------------------------------

_MICRO = r"""
import json, logging, os, sys, time, uuid
from decimal import Decimal
from pathlib import Path
from app.observability import metrics
from app.observability.logging import configure_logging, log_request
from app.settings import Settings

n = int(sys.argv[1]); level = sys.argv[2]; log_path = sys.argv[3]
settings = Settings(log_level=level)
configure_logging(settings)
sys.stderr = open(log_path, "w")  # the JSON lines go to a file, as to a collector's pipe
configure_logging(settings)
metrics.METRICS.model_label.allow(["gpt-4o-mini"])
tenant = uuid.uuid4()

def hit_metrics():
    with metrics.track_active():
        metrics.cache_lookup("exact_hit", 1.0, 0.0004)
        metrics.add_avoided_cost("gpt-4o-mini", Decimal("0.000123"))
    metrics.observe_request("gpt-4o-mini", 200, "HIT", 0.0021)

def hit_log(i):
    log_request(request_id=f"req-{i}", tenant_id=tenant, model="gpt-4o-mini", model_used="gpt-4o-mini",
                cache_status="HIT", tier="exact", similarity=1.0, http_status=200, latency_ms=2.1,
                tokens=0, cost_usd=Decimal(0))

out = {"multiprocess": metrics.multiprocess_mode()}
for name, call in (("metrics", lambda i: hit_metrics()), ("log", hit_log)):
    for i in range(2000):
        call(i)
    started = time.process_time()
    for i in range(n):
        call(i)
    out[name] = (time.process_time() - started) / n * 1e6
print(json.dumps(out))
"""


def micro(n: int, *, multiprocess: bool, level: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    scratch = Path(tempfile.mkdtemp(prefix="obs-micro-"))
    try:
        if multiprocess:
            (scratch / "prom").mkdir()
            env["PROMETHEUS_MULTIPROC_DIR"] = str(scratch / "prom")
        done = subprocess.run(
            [sys.executable, "-c", _MICRO, str(n), level, str(scratch / "log.jsonl")],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
        return result
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# --- 1. over HTTP --------------------------------------------------------------------------------


def _tree_cpu(pids: list[int]) -> float:
    import psutil

    total = 0.0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            for proc in [root, *root.children(recursive=True)]:
                try:
                    times = proc.cpu_times()
                    total += times.user + times.system
                except psutil.NoSuchProcess:
                    pass
        except psutil.NoSuchProcess:
            pass
    return total


def http_run(level: str, *, seconds: float, concurrency: int, entries: int) -> dict[str, float]:
    import httpx

    data = Path(tempfile.mkdtemp(prefix="obs-http-"))
    two_cpus = (os.cpu_count() or 1) >= 2
    server_cpu, client_cpu = ("1", "0") if two_cpus else ("0", "0")
    port = 8700 + os.getpid() % 200
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DEJA_DATA_DIR": str(data),
        "DEJA_LOG_LEVEL": level,
        "OPENAI_API_KEY": "unused",
    }
    log = (data / "serve.log").open("wb")
    server = subprocess.Popen(
        [
            "taskset",
            "-c",
            server_cpu,
            sys.executable,
            "-m",
            "app.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((data / "serve.log").read_text()[-3000:])
            time.sleep(0.3)
        created = subprocess.run(
            [sys.executable, "-m", "app.cli", "tenants", "create", f"obs-{level.lower()}"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        key = json.loads(created.stdout.strip().splitlines()[-1])["api_key"]
        headers = {"Authorization": f"Bearer {key}"}
        prompts = [f"Where is the handbook section {i} about travel?" for i in range(entries)]
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            for i, prompt in enumerate(prompts):
                body = {"model": "gpt-4o-mini", "prompt": prompt, "response": f"Section {i}: page {i + 3}."}
                client.post("/v1/cache/entries", json=body).raise_for_status()
        postmaster = int((data / "pg" / "postmaster.pid").read_text().split()[0])
        subprocess.run(
            ["taskset", "-a", "-c", "-p", server_cpu, str(postmaster)], check=True, capture_output=True
        )
        import psutil

        for child in psutil.Process(postmaster).children():
            subprocess.run(
                ["taskset", "-c", "-p", server_cpu, str(child.pid)], check=False, capture_output=True
            )
        script = data / "requests.lua"
        bodies = [
            json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": p}]})
            for p in prompts
        ]
        script.write_text(
            "local bodies = {" + ",".join(json.dumps(b) for b in bodies) + "}\n"
            "local i = 0\n"
            "request = function()\n  i = i + 1\n"
            f'  return wrk.format("POST", "/v1/chat/completions", {{["Authorization"] = "Bearer {key}", '
            '["Content-Type"] = "application/json"}, bodies[(i % #bodies) + 1])\nend\n'
        )
        wrk = ["taskset", "-c", client_cpu, "wrk", "-t1", f"-c{concurrency}", "--latency", "-s", str(script)]
        subprocess.run([*wrk, "-d", "3s", url], check=True, capture_output=True)  # warm-up
        pids = [server.pid, postmaster]
        cpu_before = _tree_cpu(pids)
        ran = subprocess.run([*wrk, "-d", f"{seconds:g}s", url], check=True, capture_output=True, text=True)
        cpu = _tree_cpu(pids) - cpu_before
        requests = _wrk_requests(ran.stdout)
        return {
            "requests": requests,
            "req_per_s": requests / seconds,
            "cpu_ms_per_request": cpu / max(requests, 1) * 1000,
            "p50_ms": _wrk_p50_ms(ran.stdout),
        }
    finally:
        server.terminate()
        try:
            server.wait(timeout=40)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        shutil.rmtree(data, ignore_errors=True)


def _wrk_requests(output: str) -> int:
    for line in output.splitlines():
        if "requests in" in line:
            return int(line.split()[0])
    raise RuntimeError(output)


def _wrk_p50_ms(output: str) -> float:
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "50%":
            value = parts[1]
            for unit, scale in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
                if value.endswith(unit):
                    return float(value[: -len(unit)]) * scale
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--entries", type=int, default=200)
    parser.add_argument("--iterations", type=int, default=50_000)
    parser.add_argument("--skip-http", action="store_true")
    args = parser.parse_args()

    print("| in process, per exact hit | µs of CPU |")
    print("|---|---|")
    for multiprocess in (False, True):
        figures = micro(args.iterations, multiprocess=multiprocess, level="INFO")
        mode = "multiprocess mode (several workers)" if multiprocess else "one process"
        print(f"| metrics, {mode} | {figures['metrics']:.1f} |")
    for level in ("INFO", "WARNING"):
        figures = micro(args.iterations, multiprocess=False, level=level)
        print(f"| request log line at {level} | {figures['log']:.1f} |")
    if args.skip_http:
        return
    print()
    print("| exact hits over HTTP, one worker | req/s | p50 ms | server CPU ms/request |")
    print("|---|---|---|---|")
    for level in ("INFO", "WARNING"):
        run = http_run(level, seconds=args.seconds, concurrency=args.concurrency, entries=args.entries)
        print(
            f"| DEJA_LOG_LEVEL={level} | {run['req_per_s']:.0f} | {run['p50_ms']:.2f} | "
            f"{run['cpu_ms_per_request']:.3f} |"
        )


if __name__ == "__main__":
    main()
