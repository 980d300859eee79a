"""Parsing the router's TOML configuration and resolving routes."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.upstream import (
    ModelRoute,
    ModelRouter,
    RouterConfig,
    RouterConfigError,
    RouteTarget,
    UpstreamConfig,
    config_from_env,
    load_router_config,
    parse_router_config,
)

EXAMPLE = """
max_answer_chars = 20000

[breaker]
failure_threshold = 3
cooldown_s = 10

[retry]
backoff_base_s = 0.1

[[upstreams]]
name = "openai"
base_url = "https://api.openai.com/v1"
api_key_env = "OPENAI_API_KEY"
timeout_s = 30
max_concurrency = 32
max_retries = 2

[[upstreams]]
name = "local"
base_url = "http://127.0.0.1:8001/v1"

[default_route]
primary = "openai"
fallbacks = [{ upstream = "local" }]

[[routes]]
model = "gpt-4o"
primary = "openai"
primary_model = "gpt-4o-2024-08-06"
fallbacks = [{ upstream = "local", model = "llama3.1:8b" }]

[server]
port = 8000
"""


def test_example_parses() -> None:
    config = parse_router_config(EXAMPLE)

    assert [u.name for u in config.upstreams] == ["openai", "local"]
    openai_upstream, local = config.upstreams
    assert openai_upstream.api_key_env == "OPENAI_API_KEY"
    assert (openai_upstream.timeout_s, openai_upstream.max_concurrency, openai_upstream.max_retries) == (
        30,
        32,
        2,
    )
    assert local.api_key_env is None
    assert (local.timeout_s, local.max_concurrency, local.max_retries) == (60.0, 64, 2)
    assert config.breaker.failure_threshold == 3
    assert config.retry.backoff_base_s == 0.1
    assert config.retry.backoff_max_s == 8.0
    assert config.max_answer_chars == 20_000


def test_routes_resolve_to_targets() -> None:
    config = parse_router_config(EXAMPLE)

    assert config.targets_for("gpt-4o") == [
        RouteTarget(upstream="openai", model="gpt-4o-2024-08-06"),
        RouteTarget(upstream="local", model="llama3.1:8b"),
    ]
    assert config.targets_for("anything-else") == [
        RouteTarget(upstream="openai", model="anything-else"),
        RouteTarget(upstream="local", model="anything-else"),
    ]


def test_without_default_route_the_first_upstream_serves() -> None:
    config = parse_router_config('[[upstreams]]\nname = "a"\n[[upstreams]]\nname = "b"\n')

    assert config.targets_for("m") == [RouteTarget(upstream="a", model="m")]


def test_environment_only() -> None:
    config = config_from_env({"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})

    (upstream,) = config.upstreams
    assert upstream.base_url == "http://127.0.0.1:9/v1"
    assert upstream.api_key_env == "OPENAI_API_KEY"
    assert config.targets_for("gpt-4o-mini") == [RouteTarget(upstream="openai", model="gpt-4o-mini")]
    assert config_from_env({}).upstreams[0].base_url is None


def test_load_reads_a_file_or_falls_back_to_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "deja.toml"
    path.write_text(EXAMPLE, encoding="utf-8")

    assert len(load_router_config(path).upstreams) == 2
    assert load_router_config(None, environ={}).upstreams[0].name == "openai"
    with pytest.raises(RouterConfigError, match="cannot read"):
        load_router_config(tmp_path / "missing.toml")
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b'[[upstreams]]\nname = "caf\xe9"\n')
    with pytest.raises(RouterConfigError, match=r"latin.toml: not UTF-8 text \(byte 26\)"):
        load_router_config(latin)


def test_a_section_the_router_does_not_read_is_named(caplog: pytest.LogCaptureFixture) -> None:
    text = '[[upstreams]]\nname = "a"\n[[route]]\nmodel = "m"\nprimary = "a"\n'

    config = parse_router_config(text, source="deja.toml")

    assert config.routes == ()
    assert "deja.toml: the router does not read 'route' (did you mean 'routes'?)" in caplog.text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[upstreams]\n", "not valid TOML"),
        ("[server]\nport = 1\n", r"no \[\[upstreams\]\]"),
        ('[[upstreams]]\nname = "a"\ntimeout = 3\n', "unknown field `timeout`"),
        ('[[upstreams]]\nname = "a"\ntimeout_s = "fast"\n', r"Expected `float`.*timeout_s"),
        ('[[upstreams]]\nname = "a"\n[[upstreams]]\nname = "a"\n', "declared twice"),
        ('[[upstreams]]\nname = "a"\nbase_url = "api.example.com"\n', "must start with http"),
        ('[[upstreams]]\nname = "a"\napi_key_env = "sk-abc123"\n', "must name an environment variable"),
        ('[[upstreams]]\nname = "a"\nmax_concurrency = 0\n', "max_concurrency"),
        ('[[upstreams]]\nname = "a"\n[[routes]]\nmodel = "m"\nprimary = "b"\n', "unknown upstream 'b'"),
        (
            '[[upstreams]]\nname = "a"\n[default_route]\nprimary = "a"\nfallbacks = [{ upstream = "c" }]\n',
            "default_route: unknown upstream 'c'",
        ),
        (
            '[[upstreams]]\nname = "a"\n[[routes]]\nmodel = "m"\nprimary = "a"\n[[routes]]\nmodel = "m"\nprimary = "a"\n',
            "two routes",
        ),
        ('[[upstreams]]\nname = "a"\n[breaker]\nfailure_threshold = 0\n', "failure_threshold"),
        # TOML reads nan and inf as floats: a nan timeout failed every miss, an inf one never ended.
        ('[[upstreams]]\nname = "a"\ntimeout_s = nan\n', "timeout_s must be a positive number"),
        ('[[upstreams]]\nname = "a"\ntimeout_s = inf\n', "timeout_s must be a positive number"),
        ('[[upstreams]]\nname = "a"\n[breaker]\ncooldown_s = nan\n', "cooldown_s must be a number"),
        ('[[upstreams]]\nname = "a"\n[retry]\nbackoff_max_s = inf\n', "retry durations"),
    ],
)
def test_bad_config_is_refused_clearly(text: str, message: str) -> None:
    with pytest.raises(RouterConfigError, match=message):
        parse_router_config(text, source="deja.toml")


def test_router_refuses_a_config_built_in_code_with_bad_references() -> None:
    config = RouterConfig(
        upstreams=(UpstreamConfig(name="a"),), routes=(ModelRoute(model="m", primary="nowhere"),)
    )

    with pytest.raises(RouterConfigError, match="unknown upstream 'nowhere'"):
        ModelRouter(config, environ={})
