"""Throughput classes driven by `wrk` (C, event loop, several threads) instead of the Python
client, so that on a small machine the load generator is not what limits the figures.

The requests of a class are made by the same request maker as with httpx, written to a file
that a Lua script reads and cycles through; X-Cache counts and latency quantiles come back as JSON.
"""

from __future__ import annotations

import asyncio
import json
import resource
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from app.toolkit.bench.http import ClassResult, Processes, Request, _pct

# Distinct requests per wrk run: a class never sends the same miss twice in its window.
REQUESTS_PER_CLASS = 20_000
_QUANTILES = [q / 10 for q in range(1, 1000)] + [99.9, 99.99, 100.0]

_LUA = """
-- Requests come from a file, three lines each: path, Authorization header, JSON body.
local requests = {}
local lines = {}
for line in io.lines(%(requests)s) do table.insert(lines, line) end
for i = 1, #lines - 2, 3 do
  table.insert(requests, {lines[i], {["Authorization"] = lines[i + 1], ["Content-Type"] = "application/json"},
    lines[i + 2]})
end
-- Globals: done() reads each thread's counts with thread:get.
counter = 0
statuses = {}
local threads = {}
function setup(thread)
  thread:set("offset", #threads)
  table.insert(threads, thread)
end
function init(args)
  counter = offset
  statuses = {}
end
function request()
  counter = counter + 1
  local r = requests[(counter %% #requests) + 1]
  return wrk.format("POST", r[1], r[2], r[3])
end
function response(status, headers, body)
  local key = headers["X-Cache"] or headers["x-cache"] or "-"
  if status ~= 200 then key = "error" end
  statuses[key] = (statuses[key] or 0) + 1
end
function done(summary, latency, requests_done)
  local counts = {}
  for _, thread in ipairs(threads) do
    local s = thread:get("statuses")
    for k, v in pairs(s) do counts[k] = (counts[k] or 0) + v end
  end
  local quantiles = {}
  for _, q in ipairs({%(quantiles)s}) do table.insert(quantiles, latency:percentile(q) / 1000.0) end
  local parts = {}
  for k, v in pairs(counts) do table.insert(parts, string.format("%%q: %%d", k, v)) end
  io.write("WRK_JSON " .. string.format(
    '{"requests": %%d, "seconds": %%f, "errors": %%d, "statuses": {%%s}, "latencies_ms": [%%s]}',
    summary.requests, summary.duration / 1e6,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    table.concat(parts, ", "), table.concat(quantiles, ", ")) .. "\\n")
end
"""


def available() -> bool:
    return shutil.which("wrk") is not None


def _write(
    next_request: Callable[[int], Request], first: int, count: int, base_path: str, folder: Path, name: str
) -> Path:
    """Requests first..first+count of the class, for one wrk run (a warm-up never sends what the
    measured run sends: a miss must stay a miss)."""
    data = folder / f"{name}.txt"
    with data.open("w") as out:
        for i in range(first, first + count):
            path, headers, body = next_request(i)
            auth = headers.get("Authorization", "")
            out.write(f"{base_path}{path}\n{auth}\n{json.dumps(body, separators=(',', ':'))}\n")
    script = folder / f"{name}.lua"
    quantiles = ", ".join(f"{q:g}" for q in _QUANTILES)
    script.write_text(_LUA % {"requests": "[==[" + str(data) + "]==]", "quantiles": quantiles})
    return script


async def _wrk(
    base_url: str, script: Path, concurrency: int, seconds: float, threads: int
) -> dict[str, object]:
    process = await asyncio.create_subprocess_exec(
        "wrk",
        f"-t{threads}",
        f"-c{concurrency}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "60s",
        "-s",
        str(script),
        base_url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    text = out.decode(errors="replace")
    for line in text.splitlines():
        if line.startswith("WRK_JSON "):
            parsed: dict[str, object] = json.loads(line.removeprefix("WRK_JSON "))
            return parsed
    raise RuntimeError(f"wrk gave no result (exit {process.returncode}):\n{text[-2000:]}")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def drive_wrk(
    name: str,
    target: str,
    base_url: str,
    next_request: Callable[[int], Request],
    *,
    concurrency: int,
    warmup_s: float,
    seconds: float,
    processes: Processes,
    threads: int = 1,
) -> ClassResult:
    """One class at `concurrency` open connections: a warm-up run, then a measured run. Latency
    percentiles are wrk's (its HdrHistogram, kept as 1,000 quantiles); client CPU is wrk's own."""
    result = ClassResult(name=name, target=target, seconds=seconds)
    with tempfile.TemporaryDirectory(prefix="deja-wrk-") as folder:
        base_path = urlsplit(base_url).path.rstrip("/")  # wrk sends the script's paths as they are
        if warmup_s > 0:
            warmup = _write(next_request, 0, REQUESTS_PER_CLASS, base_path, Path(folder), "warmup")
            await _wrk(base_url, warmup, concurrency, warmup_s, threads)
        script = _write(
            next_request, REQUESTS_PER_CLASS, REQUESTS_PER_CLASS, base_path, Path(folder), "measured"
        )
        before, client_before = processes.snapshot(), _children_cpu()
        found = await _wrk(base_url, script, concurrency, seconds, threads)
        after, client_after = processes.snapshot(), _children_cpu()
    wall = after.wall - before.wall
    statuses = found["statuses"]
    assert isinstance(statuses, dict)
    result.cache_status.update({str(k): int(v) for k, v in statuses.items()})
    result.completed_in_window = int(str(found["requests"]))
    result.seconds = float(str(found["seconds"]))
    result.errors = int(str(found["errors"])) + result.cache_status.get("error", 0)
    latencies = found["latencies_ms"]
    assert isinstance(latencies, list)
    result.latencies_ms = [float(v) for v in latencies]
    result.server_cpu_pct = _pct(before.server, after.server, wall)
    result.postgres_cpu_pct = _pct(before.postgres, after.postgres, wall)
    result.client_cpu_pct = (client_after - client_before) / wall * 100 if wall > 0 else 0.0
    machine_total = after.machine_total - before.machine_total
    result.machine_cpu_pct = (
        (after.machine_busy - before.machine_busy) / machine_total * 100 if machine_total else 0.0
    )
    result.server_rss_mb = result.server_rss_peak_mb = processes.server_rss_mb()
    result.generator = "wrk"
    return result
