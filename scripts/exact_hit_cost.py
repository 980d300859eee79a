"""What an exact hit costs the server, per request, under load.

    python scripts/exact_hit_cost.py [--entries 200] [--rounds 3] [--seconds 15] [--concurrency 8]

A fresh embedded Postgres, the project's fake model and `deja serve` with one worker, pinned with
Postgres to one CPU and `wrk` to the other (so the load generator is not what limits the server).
`--entries` template prompts are stored (`POST /v1/cache/entries`, as a chat's messages); then each
round resends them, for `--seconds` each after a short warm-up, through the two routes an exact hit
takes: the native lookup (`POST /v1/cache/lookup`) and the chat completion. It prints, per round
and route, the requests per second, wrk's p50 and p99, and the CPU time per request of the server
(every process of its tree) and of Postgres. Compare commits by running it in each, one after the
other. Needs `wrk` and two CPUs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil

import httpx
import psutil

from app.toolkit.bench.http import Processes, chat_body, scratch_deja
from app.toolkit.bench.prompts import TEMPLATE_PAIRS
from app.toolkit.bench.wrk import drive_wrk

SERVER_CPU, CLIENT_CPU = 1, 0


def pin(root: psutil.Process, cpu: int) -> None:
    for process in [root, *root.children(recursive=True)]:
        try:
            process.cpu_affinity([cpu])
        except psutil.Error:
            continue


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--entries", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    if shutil.which("wrk") is None or len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("needs wrk (apt-get install wrk) and two CPUs")

    prompts = [pair.prompt for pair in TEMPLATE_PAIRS[: args.entries]]
    with scratch_deja("exact-hit-cost", fake_latency_ms=5) as deja:
        auth = {"Authorization": f"Bearer {deja.key}"}
        with httpx.Client(base_url=f"{deja.server.url}/v1", headers=auth, timeout=60) as client:
            for prompt in prompts:
                entry = {**chat_body(prompt), "response": f"An answer to: {prompt}"}
                client.post("/cache/entries", json=entry).raise_for_status()
            for prompt in prompts:  # every request below is an exact hit
                found = client.post("/cache/lookup", json=chat_body(prompt)).json()
                repeat = client.post("/chat/completions", json=chat_body(prompt))
                if found.get("tier") != "exact" or repeat.headers.get("x-cache-tier") != "exact":
                    raise RuntimeError(f"not an exact hit: {prompt!r}")
        pin(psutil.Process(deja.server.process.pid), SERVER_CPU)
        pin(psutil.Process(deja.postmaster_pid), SERVER_CPU)
        os.sched_setaffinity(0, {CLIENT_CPU})  # wrk, started from here, runs beside the server
        processes = Processes(deja.server.process.pid, deja.postmaster_pid)
        routes = {
            "lookup": lambda i: ("/v1/cache/lookup", auth, chat_body(prompts[i % len(prompts)])),
            "chat": lambda i: ("/v1/chat/completions", auth, chat_body(prompts[i % len(prompts)])),
        }
        print(f"{len(prompts)} entries; 1 worker; wrk at concurrency {args.concurrency}")
        print("| round | route | req/s | p50 / p99 ms | server CPU ms/req | Postgres CPU ms/req |")
        print("|---|---|---|---|---|---|")
        for round_ in range(1, args.rounds + 1):
            for name, next_request in routes.items():
                result = asyncio.run(
                    drive_wrk(
                        name,
                        "deja",
                        deja.server.url,
                        next_request,
                        concurrency=args.concurrency,
                        warmup_s=3,
                        seconds=args.seconds,
                        processes=processes,
                    )
                )
                if result.errors:
                    raise RuntimeError(f"{name}: {result.errors} requests failed")
                per_request = 10 / result.throughput  # ms of CPU per request at 1% of a core
                latencies = result.latencies_ms
                print(
                    f"| {round_} | {name} | {result.throughput:.0f} "
                    f"| {latencies[499]:.1f} / {latencies[989]:.1f} "
                    f"| {(result.server_cpu_pct or 0) * per_request:.3f} "
                    f"| {(result.postgres_cpu_pct or 0) * per_request:.3f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
