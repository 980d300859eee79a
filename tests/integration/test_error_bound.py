"""The error bound end to end: a tenant sets `max_error_rate` through the admin API, chat
requests go through Déjà to the fake model answering from a file, explored requests are
booked and labelled, and what learning costs shows in analytics."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import openai
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner

from app.asgi import create_app
from app.cache.bound.judges import JUDGE_PROMPT, LLMJudge, answer_text
from app.cli import cli
from app.db.engine import transaction
from app.settings import Settings
from app.toolkit.fakellm import FakeLLMServer
from app.toolkit.fakellm.config import FakeLLMConfig, load_answers
from app.upstream.config import load_router_config
from app.upstream.router import ModelRouter
from tests.conftest import ADMIN_HEADERS, ADMIN_TOKEN, ServerThread, TenantKey
from tests.integration.test_cache_api import NOTES

MODEL = "gpt-4o-mini"
VPN = [
    "How do I reset my VPN password?",
    "I forgot my VPN password, how can I reset it",
    "steps to reset a VPN password",
    "Can you walk me through resetting my password for VPN?",
    "how do I reset my VPN password pls",
    "Quick question: how do I reset my VPN password",
    "hey - steps to reset a VPN password thx",
    "VPN password reset - how?",
    "how can I reset my VPN password?",
    "Please help: I forgot my VPN password, how can I reset it",
]
OKTA = [
    "How do I reset my Okta password?",
    "steps to reset an Okta password",
    "I forgot my Okta password, how can I reset it",
]


@pytest.fixture(scope="module")
def answers_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("answers") / "answers.jsonl"
    lines = [{"prompt": p, "answer": "Use the VPN self-service portal."} for p in VPN]
    lines += [{"prompt": p, "answer": "Okta: click 'Forgot password'."} for p in OKTA]
    # The llm judge's question about two answers that differ in words but not in substance.
    judged = JUDGE_PROMPT.format(
        question=VPN[0], stored="Use the VPN portal.", fresh="Reset it in the VPN portal."
    )
    lines.append({"prompt": judged, "answer": "YES"})
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return path


@pytest.fixture(scope="module")
def answering_llm(answers_file: Path) -> Iterator[FakeLLMServer]:
    with FakeLLMServer(FakeLLMConfig(answers=load_answers(answers_file))) as server:
        yield server


@pytest.fixture(scope="module")
def bound_deja(
    settings: Settings, answering_llm: FakeLLMServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    config = tmp_path_factory.mktemp("bound-config") / "deja.toml"
    config.write_text(
        f'[[upstreams]]\nname = "answers"\nbase_url = "{answering_llm.base_url}"\ntimeout_s = 5\n'
    )
    state = tmp_path_factory.mktemp("bound-state")
    with ServerThread(
        create_app(settings.model_copy(update={"config": config, "data_dir": state}))
    ) as server:
        yield server


@pytest.fixture
async def client(bound_deja: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    async def settled(_: httpx.Response) -> None:
        # Answers are stored and booked just after they are sent: these tests read what each
        # request left behind before sending the next, so each waits for that.
        await bound_deja.settle()

    async with httpx.AsyncClient(
        base_url=bound_deja.url, timeout=30, event_hooks={"response": [settled]}
    ) as http:
        yield http


async def ask(client: httpx.AsyncClient, tenant: TenantKey, prompt: str, **body: object) -> httpx.Response:
    response = await client.post(
        "/v1/chat/completions",
        headers=tenant.headers,
        json={"model": MODEL, "messages": [{"role": "user", "content": prompt}], **body},
    )
    assert response.status_code == 200, response.text
    return response


def content(response: httpx.Response) -> str:
    return str(response.json()["choices"][0]["message"]["content"])


async def bounded_tenant(client: httpx.AsyncClient, make_tenant, **settings: object) -> TenantKey:  # type: ignore[no-untyped-def]
    tenant: TenantKey = await make_tenant("bound")
    patched = await client.patch(
        f"/admin/tenants/{tenant.tenant_id}",
        headers=ADMIN_HEADERS,
        json={"settings": {"max_error_rate": 0.02, "answer_judge": "exact", **settings}},
    )
    assert patched.status_code == 200, patched.text
    return tenant


async def scalar(sessionmaker: async_sessionmaker[AsyncSession], sql: str, tenant_id: uuid.UUID) -> int:
    async with transaction(sessionmaker, system=True) as session:
        return int((await session.execute(text(sql), {"tenant_id": tenant_id})).scalar_one())


async def labels_settle(
    sessionmaker: async_sessionmaker[AsyncSession], tenant_id: uuid.UUID, expected: int
) -> int:
    """Labels are written after the response: wait until `expected` are there (or 10 s)."""
    count = 0
    for _ in range(100):
        count = await scalar(
            sessionmaker, "SELECT count(*) FROM cache_labels WHERE tenant_id = :tenant_id", tenant_id
        )
        if count >= expected:
            break
        await asyncio.sleep(0.1)
    return count


async def test_fake_model_answers_from_the_file_streamed_or_not(answering_llm: FakeLLMServer) -> None:
    async with openai.AsyncOpenAI(base_url=answering_llm.base_url, api_key="any", max_retries=0) as sdk:
        plain = await sdk.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "  How do I reset my   Okta password? "}]
        )
        assert plain.choices[0].message.content == "Okta: click 'Forgot password'."
        stream = await sdk.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": OKTA[1]}], stream=True
        )
        pieces = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
        assert "".join(pieces) == "Okta: click 'Forgot password'."
        other = await sdk.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hello"}]
        )
        assert (other.choices[0].message.content or "").startswith("Answer to: hello")


async def test_explored_requests_are_booked_labelled_and_counted(
    client: httpx.AsyncClient,
    make_tenant,
    sessionmaker: async_sessionmaker[AsyncSession],  # type: ignore[no-untyped-def]
) -> None:
    tenant = await bounded_tenant(client, make_tenant)
    served = []
    for prompt in VPN:
        response = await ask(client, tenant, prompt)
        served.append(
            (response.headers.get("X-Cache-Explored", response.headers["X-Cache"]), content(response))
        )
    # Every answer is right, whether served from the cache or explored.
    assert {answer for _, answer in served} == {"Use the VPN self-service portal."}
    # Without labels a candidate is a coin flip: never served, so paraphrases are explored.
    explored = await scalar(
        sessionmaker,
        "SELECT count(*) FROM ledger WHERE tenant_id = :tenant_id AND explored",
        tenant_id=tenant.tenant_id,
    )
    assert explored >= 3
    assert explored == sum(1 for status, _ in served if status == "true")
    # Each explored request labels its candidate: the exact judge found the answers equal.
    assert await labels_settle(sessionmaker, tenant.tenant_id, explored) == explored
    wrong = await scalar(
        sessionmaker,
        "SELECT count(*) FROM cache_labels WHERE tenant_id = :tenant_id AND NOT correct",
        tenant.tenant_id,
    )
    assert wrong == 0

    for prompt in OKTA:
        assert content(await ask(client, tenant, prompt)) == "Okta: click 'Forgot password'."

    async with transaction(sessionmaker, tenant_id=tenant.tenant_id) as session:
        row = (
            await session.execute(
                text(
                    "SELECT requests, explored_requests, explored_cost_usd, labels FROM analytics.learning_daily"
                )
            )
        ).one()
    assert row.requests == len(VPN) + len(OKTA)
    assert row.explored_requests >= explored
    assert row.explored_cost_usd > 0
    assert row.labels >= explored


async def test_without_a_bound_nothing_is_explored(
    client: httpx.AsyncClient,
    make_tenant,
    sessionmaker: async_sessionmaker[AsyncSession],  # type: ignore[no-untyped-def]
) -> None:
    tenant: TenantKey = await make_tenant("nobound")
    for prompt in VPN[:4]:
        await ask(client, tenant, prompt)
    explored = await scalar(
        sessionmaker,
        "SELECT count(*) FROM ledger WHERE tenant_id = :tenant_id AND explored",
        tenant.tenant_id,
    )
    assert explored == 0
    assert (
        await scalar(
            sessionmaker, "SELECT count(*) FROM cache_labels WHERE tenant_id = :tenant_id", tenant.tenant_id
        )
        == 0
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"max_error_rate": 0.9},
        {"max_error_rate": 0},
        {"max_error_rate": "low"},
        {"answer_judge": "maybe"},
        {"answer_min_similarity": 1.5},
    ],
)
async def test_bad_bound_settings_are_refused(
    client: httpx.AsyncClient, make_tenant, bad: dict[str, object]
) -> None:  # type: ignore[no-untyped-def]
    tenant: TenantKey = await make_tenant("badbound")
    response = await client.patch(
        f"/admin/tenants/{tenant.tenant_id}", headers=ADMIN_HEADERS, json={"settings": bad}
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_feedback_on_a_semantic_hit_becomes_a_label(
    client: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    tenant: TenantKey = await make_tenant("feedback")
    await ask(client, tenant, VPN[0])
    hit = await ask(client, tenant, VPN[8])
    assert hit.headers["X-Cache-Tier"] == "semantic", hit.headers
    request_id = hit.headers["X-Request-Id"]
    for correct in (True, False):  # a second word on the same request replaces the first
        response = await client.post(
            "/v1/cache/feedback", headers=tenant.headers, json={"request_id": request_id, "correct": correct}
        )
        assert response.status_code == 200, response.text
    async with transaction(sessionmaker, tenant_id=tenant.tenant_id) as session:
        labels = (
            await session.execute(text("SELECT source, correct, scorer, score, similarity FROM cache_labels"))
        ).all()
    assert len(labels) == 1
    label = labels[0]
    assert (label.source, label.correct, label.scorer) == ("feedback", False, "cross_encoder")
    assert 0.0 <= label.score <= 1.0
    assert label.similarity == pytest.approx(float(hit.headers["X-Cache-Similarity"]), abs=1e-3)


async def test_each_cross_encoder_learns_on_curves_of_its_own(
    client: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    # A rewording of a request over one pasted text is scored by the cross-encoder of such pairs,
    # a plain paraphrase by the general one: their probabilities are not calibrated together, so
    # each explored request labels the curve of the model that read it.
    tenant = await bounded_tenant(client, make_tenant)
    await ask(client, tenant, f"Write a two-line summary of these notes for the executive team: {NOTES}")
    over_text = await ask(client, tenant, f"{NOTES}\nCondense this for the executives in two lines.")
    await ask(client, tenant, VPN[0])
    plain = await ask(client, tenant, VPN[1])
    # Neither curve has a label yet: both candidates are explored, none served.
    assert [r.headers.get("X-Cache-Explored") for r in (over_text, plain)] == ["true", "true"]
    assert await labels_settle(sessionmaker, tenant.tenant_id, 2) == 2
    async with transaction(sessionmaker, tenant_id=tenant.tenant_id) as session:
        scorers = (
            await session.execute(text("SELECT scorer FROM cache_labels ORDER BY created_at"))
        ).scalars()
        assert list(scorers) == ["cross_encoder_over_text", "cross_encoder"]


def test_replay_counts_hits_wrong_hits_and_explored(
    bound_deja: ServerThread,
    answers_file: Path,
    tmp_path: Path,
    make_tenant,  # type: ignore[no-untyped-def]
) -> None:
    # A stream where every prompt comes twice: the second time it is an exact hit, right by construction.
    lines = answers_file.read_text().splitlines()
    stream = tmp_path / "stream.jsonl"
    stream.write_text("\n".join(lines + lines) + "\n")
    created = httpx.post(
        f"{bound_deja.url}/admin/tenants",
        headers=ADMIN_HEADERS,
        json={"name": f"replayed-{uuid.uuid4().hex[:8]}"},
    )
    assert created.status_code == 201, created.text
    tenant_id, key = created.json()["tenant"]["id"], created.json()["api_key"]["api_key"]
    settings = {"settings": {"max_error_rate": 0.02, "answer_judge": "exact"}}
    patched = httpx.patch(f"{bound_deja.url}/admin/tenants/{tenant_id}", headers=ADMIN_HEADERS, json=settings)
    assert patched.status_code == 200, patched.text
    plot = tmp_path / "replay.png"
    result = CliRunner().invoke(
        cli,
        [
            *("replay", str(stream), "--url", bound_deja.url, "--key", key, "--compare"),
            *("--admin-key", ADMIN_TOKEN, "--target", "0.02", "--plot", str(plot), "--json"),
        ],
    )
    assert result.exit_code == 0, result.output
    bounded, fixed = json.loads(result.stdout)["runs"]
    assert fixed["label"] == "no bound"
    for run in (bounded, fixed):
        assert run["requests"] == 2 * len(lines)
        assert run["hits"] >= len(lines)  # every repeat
        assert 0 <= run["wrong_hits"] <= run["hits"] - len(lines)  # exact hits are never wrong here
        assert run["cost_usd"] > 0
        assert len(run["curves"]["hit_flags"]) == run["requests"]
    assert bounded["explored"] > 0
    assert fixed["explored"] == 0
    assert plot.stat().st_size > 10_000


async def test_the_llm_judge_asks_the_model_once_per_pair(
    answering_llm: FakeLLMServer, tmp_path: Path
) -> None:
    config = tmp_path / "judge.toml"
    config.write_text(f'[[upstreams]]\nname = "judge"\nbase_url = "{answering_llm.base_url}"\n')
    router = ModelRouter(load_router_config(config))

    async def ask_model(model: str, prompt: str) -> str:
        result = await router.complete({"model": model, "messages": [{"role": "user", "content": prompt}]})
        return answer_text(result.completion)

    judge = LLMJudge(ask_model, MODEL, OrderedDict())
    async with httpx.AsyncClient(base_url=answering_llm.root_url) as fake:
        before = (await fake.get("/_fake/stats")).json()["chat"].get(MODEL, 0)
        for _ in range(2):  # the second verdict comes from memory
            assert await judge.same(VPN[0], "Use the VPN portal.", "Reset it in the VPN portal.")
        assert not await judge.same(VPN[0], "Use the VPN portal.", "Okta: click 'Forgot password'.")
        assert await judge.same(VPN[0], "Same.", "same")  # equal answers need no call
        after = (await fake.get("/_fake/stats")).json()["chat"].get(MODEL, 0)
    await router.aclose()
    assert after - before == 2


async def explore_with_the_llm_judge(client: httpx.AsyncClient, tenant: TenantKey) -> list[str]:
    """Paraphrases outside the fake model's file, one at a time: without labels each is explored,
    and the fake model's answers to them differ in words, so each explored one asks the judge.
    The ids of the explored requests."""
    explored = []
    for prompt in [p.replace("VPN", "Jira") for p in VPN[:5]]:
        response = await ask(client, tenant, prompt)
        if response.headers.get("X-Cache-Explored") == "true":
            explored.append(response.headers["X-Request-Id"])
    return explored


async def test_the_llm_judges_calls_are_booked_and_counted_as_the_tenants(
    client: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Each call the judge makes is a ledger row of its own (a bypass naming the request judged),
    at the model's price, counted in the tenant's usage and in what learning costs."""
    tenant = await bounded_tenant(client, make_tenant, answer_judge="llm")
    explored = await explore_with_the_llm_judge(client, tenant)
    assert len(explored) >= 2
    assert await labels_settle(sessionmaker, tenant.tenant_id, len(explored)) == len(explored)
    async with transaction(sessionmaker, tenant_id=tenant.tenant_id) as session:
        calls = (
            await session.execute(
                text(
                    "SELECT request_id, metadata, cache_status, requested_model, used_model, "
                    "prompt_tokens, completion_tokens, cost_usd FROM ledger WHERE metadata ? 'answer_judge'"
                )
            )
        ).all()
        rows = (await session.execute(text("SELECT count(*) FROM ledger"))).scalar_one()
        counted = (
            await session.execute(text("SELECT requests FROM usage_counters WHERE period = 'day'"))
        ).scalar_one()
        learning = (
            await session.execute(text("SELECT judge_calls, judge_cost_usd FROM analytics.learning_daily"))
        ).one()
    assert sorted(call.metadata["answer_judge"] for call in calls) == sorted(explored)
    for call in calls:
        assert call.request_id == f"{call.metadata['answer_judge']}-judge"
        assert (call.cache_status, call.requested_model, call.used_model) == ("bypass", MODEL, MODEL)
        assert call.prompt_tokens > 50  # the judge's prompt holds the question and both answers
        assert 0 < call.completion_tokens <= 3
        assert call.cost_usd > 0
    # Every row but the hits (none here) counts against the tenant's quotas, the judge's calls too.
    assert counted == rows == len(VPN[:5]) + len(calls)
    assert learning.judge_calls == len(calls)
    assert learning.judge_cost_usd == sum(call.cost_usd for call in calls)


async def test_the_llm_judge_asks_nothing_past_the_tenants_quota(
    client: httpx.AsyncClient,
    answering_llm: FakeLLMServer,
    make_tenant,  # type: ignore[no-untyped-def]
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """A judge call the quota has no room for is not made: the explored request stays unlabelled."""
    tenant = await bounded_tenant(client, make_tenant, answer_judge="llm", judge_model="judge-quota")
    quota = await client.put(
        f"/admin/tenants/{tenant.tenant_id}/quotas/day", headers=ADMIN_HEADERS, json={"max_requests": 2}
    )
    assert quota.status_code == 200, quota.text
    prompts = [p.replace("VPN", "Confluence") for p in VPN[:2]]
    async with httpx.AsyncClient(base_url=answering_llm.root_url) as fake:
        await ask(client, tenant, prompts[0])
        explored = await ask(client, tenant, prompts[1])
        assert explored.headers.get("X-Cache-Explored") == "true", explored.headers
        judged = (await fake.get("/_fake/stats")).json()["chat"].get("judge-quota", 0)
    assert judged == 0
    assert (
        await scalar(
            sessionmaker, "SELECT count(*) FROM ledger WHERE tenant_id = :tenant_id", tenant.tenant_id
        )
        == 2
    )
    assert (
        await scalar(
            sessionmaker, "SELECT count(*) FROM cache_labels WHERE tenant_id = :tenant_id", tenant.tenant_id
        )
        == 0
    )


async def test_a_failing_judge_model_never_stops_other_tenants_requests(
    client: httpx.AsyncClient,
    answering_llm: FakeLLMServer,
    make_tenant,  # type: ignore[no-untyped-def]
) -> None:
    """The llm judge's model is rate-limited (429 on every call): the judge's calls, made in the
    background, fail more times than a breaker allows. They used to open the breaker every user's
    requests go through: another tenant's next miss got a 502."""
    async with httpx.AsyncClient(base_url=answering_llm.root_url) as fake:
        planted = await fake.post(
            "/_fake/faults", json={"model": "judge-limited", "kind": "429", "times": None}
        )
        assert planted.status_code == 200, planted.text
        judging = await bounded_tenant(client, make_tenant, answer_judge="llm", judge_model="judge-limited")
        # Without labels, paraphrases are explored; the fake model's answers to prompts outside its
        # file differ in words, so each explored request asks the judge. Asked together, their
        # calls succeed first and the judge's then fail one after another.
        first, *rest = [prompt.replace("VPN", "Jira") for prompt in VPN]
        await ask(client, judging, first)
        await asyncio.gather(*(ask(client, judging, prompt) for prompt in rest))
        # Until the judge has been asked as often as opens a breaker (5), and then no more for a
        # second (its retries wait between attempts).
        seen = [-1]
        for _ in range(100):
            await asyncio.sleep(0.3)
            seen.append((await fake.get("/_fake/stats")).json()["chat"].get("judge-limited", 0))
            if seen[-1] >= 5 and len(set(seen[-4:])) == 1:
                break
        else:
            raise AssertionError(f"the judge was not asked often enough to open a breaker: {seen}")
        # The model answers again: a user's request for it goes through, its breaker untouched by
        # the judge's failures (a breaker is per upstream and model: the judge's own model is the
        # one a shared breaker would have closed to users).
        assert (await fake.delete("/_fake/faults/judge-limited")).status_code == 200
    other = await make_tenant("bystander")
    for model in (MODEL, "judge-limited"):
        answered = await client.post(
            "/v1/chat/completions",
            headers=other.headers,
            json={
                "model": model,
                "messages": [{"role": "user", "content": "How do I reset my Okta password?"}],
            },
        )
        assert answered.status_code == 200, (model, answered.text)
        assert content(answered) == "Okta: click 'Forgot password'."


async def test_an_explored_request_that_fails_is_booked_as_explored(
    client: httpx.AsyncClient,
    answering_llm: FakeLLMServer,
    make_tenant,  # type: ignore[no-untyped-def]
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """What learning costs counts the explored requests the model failed too: their rows used to
    say explored = false, so analytics.learning_daily missed them."""
    tenant = await bounded_tenant(client, make_tenant)
    await ask(client, tenant, VPN[0])
    async with httpx.AsyncClient(base_url=answering_llm.root_url) as fake:
        planted = await fake.post("/_fake/faults", json={"model": MODEL, "kind": "500", "times": 3})
        assert planted.status_code == 200, planted.text
    failed = await client.post(
        "/v1/chat/completions",
        headers=tenant.headers,
        json={"model": MODEL, "messages": [{"role": "user", "content": VPN[1]}]},
    )
    assert failed.status_code == 502, failed.text
    async with transaction(sessionmaker, system=True) as session:
        row = (
            await session.execute(
                text("SELECT explored, http_status FROM ledger WHERE request_id = :r"),
                {"r": failed.headers["x-request-id"]},
            )
        ).one()
    assert (row.explored, row.http_status) == (True, 502)
