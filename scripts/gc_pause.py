"""How long the garbage collector's full pass holds a worker's event loop, with start-up's objects
tracked (as every worker had them) and after they are frozen (`app.asgi.settle_startup_objects`,
the end of each worker's start-up).

    python scripts/gc_pause.py [--passes 5]

A fresh embedded Postgres, migrated; the app is created and its services started in this process,
as a worker starts them (the models, the pools, the routes). A full collection (`gc.collect()`)
is then timed `--passes` times with start-up's objects tracked, and as many times after
`gc.freeze()`. Under load Python runs such a pass by itself whenever enough objects have survived
the younger generations; every request in flight waits for it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time

from app.asgi import create_app
from app.services import Services
from app.settings import Settings
from app.toolkit.scratch import scratch_database


def full_passes(passes: int) -> list[float]:
    times = []
    for _ in range(passes):
        started = time.perf_counter()
        gc.collect()
        times.append((time.perf_counter() - started) * 1000)
    return times


async def run(url: str, passes: int) -> None:
    settings = Settings(database_url=url, log_level="WARNING", ledger_rollup_interval_s=0)
    create_app(settings)
    services = await Services.start(settings)
    try:
        tracked = len(gc.get_objects())
        before = full_passes(passes)
        gc.freeze()
        after = full_passes(passes)
        print(f"objects tracked after start-up: {tracked:,}")
        print(f"a full pass, start-up's objects tracked: median {statistics.median(before):.1f} ms")
        print(
            f"a full pass after gc.freeze() ({gc.get_freeze_count():,} frozen, {len(gc.get_objects()):,} "
            f"tracked): median {statistics.median(after):.2f} ms"
        )
    finally:
        gc.unfreeze()
        await services.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--passes", type=int, default=5)
    args = parser.parse_args()
    if args.passes < 1:
        parser.error("--passes must be at least 1")
    with scratch_database("deja-gc-pause-") as scratch:
        asyncio.run(run(scratch.url, args.passes))


if __name__ == "__main__":
    main()
