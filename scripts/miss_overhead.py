"""What Déjà adds to a chat miss at one client: latency over the model's own, and CPU per miss.

    python scripts/miss_overhead.py [--stored 200] [--requests 200] [--rounds 3] [--fake-latency-ms 50] [--stream]

A fresh embedded Postgres, the project's fake model and `deja serve` (one worker unless
`--workers`), all on this machine. `--stored` template prompts are stored first through
`POST /v1/chat/completions` (each a miss). Then each round sends `--requests` misses one at a time
(a template prompt with a ticket number no entry has, as `deja bench` sends them: their neighbours
pass the similarity floor, so the verifier reads them), then as many straight to the fake model,
and prints:

- the p50 latency of each and their difference (Déjà's miss overhead at one client);
- the server's CPU and Postgres's CPU per miss (process trees, over the Déjà requests only),
  everything the miss costs included: the lookup, the quota reservation, the upstream call, and
  the answer stored and booked after the response.

The fake model's latency is short (50 ms by default) so that a round takes seconds; the overhead
does not depend on it. With `--stream` every request (the misses and the ones straight to the
model) asks for a stream, read to its end. Compare commits by running this script in each, one
after the other.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import httpx
import psutil

from app.toolkit.bench.http import chat_body, scratch_deja, tree_cpu_s
from app.toolkit.bench.prompts import TEMPLATE_PAIRS, miss_prompt


def timed(client: httpx.Client, body: dict[str, object], *, miss: bool = True) -> float:
    started = time.perf_counter()
    response = client.post("/chat/completions", json=body)
    elapsed = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    if miss and response.headers.get("x-cache", "MISS") != "MISS":
        raise RuntimeError(f"expected a miss, got {response.headers.get('x-cache')}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--stored", type=int, default=200)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fake-latency-ms", type=float, default=50.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--stream", action="store_true", help="ask for streams, each read to its end")
    args = parser.parse_args()

    def body(prompt: str) -> dict[str, object]:
        return {**chat_body(prompt), "stream": True} if args.stream else chat_body(prompt)

    with scratch_deja("miss-overhead", workers=args.workers, fake_latency_ms=args.fake_latency_ms) as service:
        postmaster = psutil.Process(service.postmaster_pid)
        deja = httpx.Client(
            base_url=f"{service.server.url}/v1",
            headers={"Authorization": f"Bearer {service.key}"},
            timeout=30,
        )
        model = httpx.Client(
            base_url=service.fake_base_url, headers={"Authorization": "Bearer unused"}, timeout=30
        )
        rng = random.Random(0)  # noqa: S311 - reproducible prompts, not secrets
        for pair in TEMPLATE_PAIRS[: args.stored]:
            timed(deja, chat_body(pair.prompt), miss=False)  # a template may be served another's answer
        for i in range(20):  # warm-up
            timed(deja, body(miss_prompt(i, rng)))
        print(
            f"{args.stored} prompts stored; {args.workers} worker(s); fake model {args.fake_latency_ms:g} ms"
            + ("; streamed" if args.stream else "")
        )
        print(
            "round | Déjà miss p50 ms | model direct p50 ms | overhead ms | server CPU ms/miss | Postgres CPU ms/miss"
        )
        for round_ in range(args.rounds):
            bodies = [body(miss_prompt(10_000 * (round_ + 1) + i, rng)) for i in range(args.requests)]
            server_before = tree_cpu_s(psutil.Process(service.server.process.pid))
            postgres_before = tree_cpu_s(postmaster)
            through = [timed(deja, body) for body in bodies]
            server_ms = (
                (tree_cpu_s(psutil.Process(service.server.process.pid)) - server_before) * 1000 / len(bodies)
            )
            postgres_ms = (tree_cpu_s(postmaster) - postgres_before) * 1000 / len(bodies)
            direct = [timed(model, body) for body in bodies]
            miss, alone = statistics.median(through), statistics.median(direct)
            print(
                f"{round_ + 1} | {miss:.1f} | {alone:.1f} | {miss - alone:.1f} | {server_ms:.2f} | {postgres_ms:.2f}"
            )


if __name__ == "__main__":
    main()
