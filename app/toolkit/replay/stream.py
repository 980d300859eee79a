"""A labelled request stream for `deja replay`, built from the project's held-out validation
intents (app/toolkit/ml/pairs.py): each question's paraphrases repeated in random order, its
look-alikes (another slot value, swapped direction, a sibling question, another output
format) interleaved, every look-alike with an answer of its own.

Each line is `{"prompt", "answer"}`; the same file is the fake model's `--answers`, so the
model answers every prompt with its question's answer and a served answer is right exactly
when it is that answer.

    python -m app.toolkit.replay.stream --out stream.jsonl [--questions 60 --seed 7]
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from app.cache.scope import normalise_prompt
from app.toolkit.ml.pairs import (
    INTENTS,
    MODIFIERS,
    POOLS,
    Intent,
    PairGenerator,
    _different,
    _pool_name,
    in_validation,
    noise,
)


@dataclass(frozen=True)
class Question:
    """One thing to answer: an intent with its slot values and output modifier."""

    intent: Intent
    values: tuple[tuple[str, str], ...]
    modifier: tuple[str, str] | None

    def key(self) -> str:
        values = sorted(value for _, value in self.values) if self.intent.symmetric else list(self.values)
        return json.dumps([self.intent.id, values, self.modifier])

    def answer(self) -> str:
        digest = hashlib.sha256(self.key().encode()).hexdigest()[:10]
        return f"[{digest}] The answer to {self.intent.id} for {', '.join(v for _, v in self.values) or '-'}."


class StreamBuilder:
    def __init__(self, seed: int) -> None:
        self.intents = [intent for intent in INTENTS if in_validation(intent)]
        self.generator = PairGenerator(self.intents, seed)
        self.rng = random.Random(seed)  # noqa: S311 - reproducible data, not secrets

    def question(self) -> Question:
        intent = self.rng.choice(self.intents)
        return Question(
            intent, tuple(sorted(self.generator._fill(intent).items())), self.generator._modifier()
        )

    def look_alike(self, base: Question) -> Question:
        """Another question that reads almost the same (the kinds the verifier's pairs use)."""
        values = dict(base.values)
        swappable = [name for name in values if _pool_name(name) != name] if not base.intent.symmetric else []
        roll = self.rng.random()
        if swappable and roll < 0.3:
            other = _pool_name(swappable[0])
            values[other], values[swappable[0]] = values[swappable[0]], values[other]
            return Question(base.intent, tuple(sorted(values.items())), base.modifier)
        if values and roll < 0.7:
            slot = self.rng.choice(sorted(values))
            values[slot] = _different(POOLS[_pool_name(slot)], values[slot], self.rng)
            return Question(base.intent, tuple(sorted(values.items())), base.modifier)
        siblings = [i for i in self.intents if i.group == base.intent.group and i.id != base.intent.id]
        if siblings and roll < 0.85:
            sibling = self.rng.choice(siblings)
            sibling_values = self.generator._fill(sibling)
            sibling_values.update({name: value for name, value in values.items() if name in sibling_values})
            return Question(sibling, tuple(sorted(sibling_values.items())), base.modifier)
        kind = base.modifier[0] if base.modifier else self.rng.choice(sorted(MODIFIERS))
        choices = [m for m in MODIFIERS[kind] if base.modifier is None or m != base.modifier[1]]
        return Question(base.intent, base.values, (kind, self.rng.choice(choices)))

    def paraphrase(self, question: Question) -> str:
        phrasing = self.rng.choice(question.intent.phrasings)
        rendered = self.generator._render(phrasing, dict(question.values), question.modifier)
        return noise(rendered, self.rng, 0.5)

    def build(self, questions: int, look_alikes: int, paraphrases: int, repeats: int) -> list[dict[str, str]]:
        """`questions` base questions, each with `look_alikes` look-alikes; every question gets
        `paraphrases` distinct phrasings, each sent 1..`repeats` times; all shuffled together."""
        owner: dict[str, str] = {}  # normalised prompt -> question key: a text two questions share is dropped
        clashes: set[str] = set()
        texts: dict[str, tuple[Question, list[str]]] = {}
        for _ in range(questions):
            base = self.question()
            for question in [base] + [self.look_alike(base) for _ in range(look_alikes)]:
                _, prompts = texts.setdefault(question.key(), (question, []))
                for _ in range(paraphrases * 3):
                    if len(prompts) >= paraphrases:
                        break
                    text = self.paraphrase(question)
                    normal = normalise_prompt(text)
                    if owner.setdefault(normal, question.key()) != question.key():
                        clashes.add(normal)
                    elif text not in prompts:
                        prompts.append(text)
        stream = [
            {"prompt": text, "answer": question.answer()}
            for question, prompts in texts.values()
            for text in prompts
            if normalise_prompt(text) not in clashes
            for _ in range(self.rng.randint(1, repeats))
        ]
        self.rng.shuffle(stream)
        return stream


def main(
    out: Annotated[Path, typer.Option(help="Where to write the JSONL stream.")],
    questions: Annotated[
        int, typer.Option(min=1, help="Base questions drawn from the validation intents.")
    ] = 60,
    look_alikes: Annotated[int, typer.Option(min=0, help="Look-alike questions per base question.")] = 2,
    paraphrases: Annotated[int, typer.Option(min=1, help="Distinct phrasings per question.")] = 5,
    repeats: Annotated[int, typer.Option(min=1, help="Each phrasing is sent 1..repeats times.")] = 3,
    seed: Annotated[int, typer.Option(help="Same seed, same stream.")] = 7,
) -> None:
    """Write a labelled replay stream built from the held-out validation intents."""
    stream = StreamBuilder(seed).build(questions, look_alikes, paraphrases, repeats)
    out.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in stream), encoding="utf-8")
    typer.echo(
        f"{len(stream)} requests, {len({line['answer'] for line in stream})} questions -> {out}", err=True
    )


if __name__ == "__main__":
    typer.run(main)
