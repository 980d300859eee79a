"""How long folding one long prompt makes the event loop wait, inline and as the service folds it.

    python scripts/fold_wait.py [--mib 1.0] [--rounds 3]

Every request's last user message is folded (`normalise_prompt`: NFKC, invisible characters,
look-alike letters, whitespace) before the cache can hash it. That is linear in the prompt's
length but not free, and on the event loop every other request of the process waits it out.
`scope_of_request` folds a message of over INLINE_CHARS characters on a worker thread. For prompts
of a few kinds, about `--mib` MiB of UTF-8 each, this prints the fold's time and the longest wait
of a coroutine that asks for the loop every millisecond meanwhile: `scope_of` called inline, then
`scope_of_request`. Medians over `--rounds`.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections.abc import Callable
from functools import partial

from app.cache.scope import INLINE_CHARS, scope_of, scope_of_request

MODEL = "gpt-4o-mini"


def _words(letters: str, rng: random.Random) -> Callable[[], str]:
    return lambda: "".join(rng.choice(letters) for _ in range(rng.randint(2, 9)))


def prompts(mib: float, seed: int) -> dict[str, str]:
    """Text of a few kinds, each about `mib` MiB in UTF-8."""
    rng = random.Random(seed)  # noqa: S311 - reproducible texts, not secrets
    size = int(mib * 2**20)
    makers: dict[str, Callable[[], str]] = {
        "English words": _words("etaoinshrdlucmfwypvbgk", rng),
        "accented Latin words": _words("abcdeéèêfghiïjklmnoöpqrstuüvwxyz", rng),
        "Cyrillic words": _words("абвгдежзийклмнопрстуфхцчшщыэюя", rng),
        "Latin words with a Cyrillic look-alike": lambda: rng.choice(["pаss", "cоde", "usеr"]) + " word",
        "Chinese characters": lambda: "".join(
            rng.choice("的一是不了人我在有他这中大来上国个到说们为子和你地出道") for _ in range(12)
        ),
    }
    texts = {}
    for kind, word in makers.items():
        parts: list[str] = []
        length = 0
        while length < size:
            part = word()
            parts.append(part)
            length += len(part.encode()) + 1
        texts[kind] = " ".join(parts)
    return texts


async def _longest_wait(fold: Callable[[], object]) -> tuple[float, float]:
    """Seconds `fold` took, and the longest the loop kept a 1 ms sleeper waiting meanwhile."""
    done = asyncio.Event()
    waits: list[float] = []

    async def sleeper() -> None:
        while not done.is_set():
            asked = time.perf_counter()
            await asyncio.sleep(0.001)
            waits.append(time.perf_counter() - asked)

    task = asyncio.create_task(sleeper())
    await asyncio.sleep(0.01)
    waits.clear()
    started = time.perf_counter()
    result = fold()
    if asyncio.iscoroutine(result):
        await result
    took = time.perf_counter() - started
    done.set()
    await task
    return took, max(waits)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mib", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"prompts of about {args.mib} MiB; folded on a thread above {INLINE_CHARS:,} characters")
    print(
        "| prompt | fold, inline | loop's longest wait, inline | fold, as served | loop's longest wait, as served |"
    )
    print("|---|---|---|---|---|")
    for kind, text in prompts(args.mib, args.seed).items():
        messages = [{"role": "user", "content": text}]
        inline = [await _longest_wait(partial(scope_of, MODEL, messages)) for _ in range(args.rounds)]
        served = [await _longest_wait(partial(scope_of_request, MODEL, messages)) for _ in range(args.rounds)]
        cells = [
            f"{statistics.median(figure[i] for figure in runs) * 1000:.0f} ms"
            for runs in (inline, served)
            for i in (0, 1)
        ]
        print(f"| {kind} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    asyncio.run(main())
