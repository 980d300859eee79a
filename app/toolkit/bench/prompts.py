"""Realistic work prompts for the benchmark, generated from templates with a fixed seed.

Each stored prompt comes with a paraphrase that keeps its meaning (and its numbers, names
and direction, so that the verifier's rules have no reason to refuse it): those are the
semantic-hit queries. Miss prompts carry a unique ticket number, so no stored entry can
answer them.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

TEAMS = ("payments", "search", "mobile", "data platform", "billing", "identity", "growth", "support")
DOCUMENTS = (
    "incident report",
    "quarterly roadmap",
    "onboarding guide",
    "release notes",
    "security review",
    "vendor contract",
    "design proposal",
    "postmortem",
)
AUDIENCES = (
    "the leadership team",
    "a new engineer",
    "our customers",
    "the finance team",
    "the on-call rotation",
)
LANGUAGES = ("Python", "Go", "TypeScript", "Java", "Rust", "SQL")
TOOLS = ("Kubernetes", "Terraform", "Postgres", "Kafka", "Redis", "GitHub Actions", "Airflow")
TASKS = (
    "roll back a failed deployment",
    "rotate the database credentials",
    "add a read replica",
    "set up alerting on error rates",
    "cache expensive queries",
    "debug a memory leak",
)
CONCEPTS = (
    ("optimistic locking", "pessimistic locking"),
    ("a mutex", "a semaphore"),
    ("horizontal scaling", "vertical scaling"),
    ("at-least-once delivery", "exactly-once delivery"),
    ("a process", "a thread"),
    ("REST", "gRPC"),
)
METRICS = ("revenue", "active users", "failed logins", "refunds", "signups", "support tickets")
DIMENSIONS = ("country", "plan", "week", "sales region", "device type")
PERIODS = ("month", "quarter", "year")
COUNTS = ("three", "five")


@dataclass(frozen=True, slots=True)
class PromptPair:
    prompt: str
    paraphrase: str


def _templates() -> list[PromptPair]:
    pairs: list[PromptPair] = []
    for team, doc, count in itertools.product(TEAMS, DOCUMENTS, COUNTS):
        pairs.append(
            PromptPair(
                f"Summarise the {doc} for the {team} team in {count} bullet points.",
                f"Can you give me a summary of the {team} team's {doc} in {count} bullet points?",
            )
        )
    for doc, audience in itertools.product(DOCUMENTS, AUDIENCES):
        pairs.append(
            PromptPair(
                f"Rewrite the {doc} so that it is easy to read for {audience}.",
                f"Please rewrite our {doc} to make it easy to read for {audience}.",
            )
        )
    for tool, task in itertools.product(TOOLS, TASKS):
        pairs.append(
            PromptPair(
                f"How do I {task} in {tool}?",
                f"What are the steps to {task} in {tool}?",
            )
        )
    for language, (first, second) in itertools.product(LANGUAGES, CONCEPTS):
        pairs.append(
            PromptPair(
                f"Explain the difference between {first} and {second}, with an example in {language}.",
                f"What is the difference between {first} and {second}? Show an example in {language}.",
            )
        )
    for metric, dimension, period in itertools.product(METRICS, DIMENSIONS, PERIODS):
        pairs.append(
            PromptPair(
                f"Write a SQL query that returns total {metric} per {dimension} for the last {period}.",
                f"I need a SQL query returning the total {metric} per {dimension} over the last {period}.",
            )
        )
    for team, tool in itertools.product(TEAMS, TOOLS):
        pairs.append(
            PromptPair(
                f"Draft an email to the {team} team announcing the {tool} upgrade this weekend.",
                f"Write an email for the {team} team to announce this weekend's {tool} upgrade.",
            )
        )
    for language, task in itertools.product(LANGUAGES, TASKS):
        pairs.append(
            PromptPair(
                f"Give me a checklist to {task} in a {language} service.",
                f"Can you make a checklist for how to {task} in a {language} service?",
            )
        )
    return pairs


TEMPLATE_PAIRS: tuple[PromptPair, ...] = tuple(_templates())


def real_prompts(count: int, rng: random.Random) -> list[PromptPair]:
    """`count` distinct prompt/paraphrase pairs (at most the number of templates)."""
    return rng.sample(TEMPLATE_PAIRS, min(count, len(TEMPLATE_PAIRS)))


def miss_prompt(index: int, rng: random.Random) -> str:
    """A prompt no entry answers: a template prompt about a ticket with a number of its own."""
    pair = rng.choice(TEMPLATE_PAIRS)
    return f"Ticket {100_000 + index}-{rng.randrange(10_000)}: {pair.prompt}"
