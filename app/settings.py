"""Configuration, read once from the environment (prefix `DEJA_`, nested groups joined by `__`)
and from a `.env` file in the working directory. Every variable is documented in
docs/configuration.md."""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Literal

from platformdirs import user_data_path
from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


def asyncpg_url(value: str | None) -> str | None:
    """A Postgres URL as Déjà connects to it (asyncpg): `postgresql://` and `postgres://`, the forms
    providers hand out, are read as `postgresql+asyncpg://`; another driver or a broken URL is refused."""
    if value is None:
        return None
    try:
        url = make_url(value)
    except (ArgumentError, ValueError):
        raise ValueError("not a database URL: postgresql+asyncpg://user:password@host:5432/db") from None
    if url.drivername not in ("postgresql", "postgres", "postgresql+asyncpg"):
        raise ValueError(f"Déjà connects with asyncpg: postgresql+asyncpg://..., not {url.drivername}://...")
    return url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def default_data_dir() -> Path:
    """The per-user data directory (~/.local/share/deja on Linux, ~/Library/Application Support/deja
    on macOS): the same for `deja serve` and every other `deja` command, wherever started."""
    return user_data_path("deja", appauthor=False)


class DatabaseSettings(BaseModel):
    pool_size: int = Field(10, ge=1, description="Connections kept open per worker process.")
    max_overflow: int = Field(10, ge=0, description="Extra connections allowed under bursts.")
    pool_timeout_s: float = Field(5.0, gt=0, description="Wait for a free connection before failing.")
    statement_timeout_ms: int = Field(5000, ge=0, description="Server-side limit per statement; 0 = none.")
    echo: bool = Field(False, description="Log every SQL statement, without its parameters (debugging only).")
    read_replica_url: str | None = Field(
        None,
        description="A streaming replica of the database: cache lookups search there, and confirm the "
        "entry they serve on the primary; everything else reads and writes the primary.",
    )

    @field_validator("read_replica_url")
    @classmethod
    def _asyncpg(cls, value: str | None) -> str | None:
        return asyncpg_url(value)


class RequestLimits(BaseModel):
    max_messages: int = Field(1000, ge=1, description="Messages in one chat request (422 above).")
    max_prompt_tokens: int = Field(
        200_000, ge=1, description="Estimated prompt tokens of one request sent upstream (413 above)."
    )
    timeout_s: float = Field(
        300.0,
        gt=0,
        le=3600,
        description="Deadline of one chat request, arrival to last byte: 504 if no answer has started by "
        "then; a stream still running is ended (and booked for what it delivered).",
    )
    lease_s: float = Field(
        30.0,
        ge=1,
        le=3600,
        description="How long a replica's quota reservations and in-flight misses outlive it: renewed every "
        "third of this while it runs; after a replica dies, its reservations go back to the quotas and "
        "another replica takes over its in-flight misses within about 1.3 times this.",
    )
    default_output_tokens: int = Field(
        4096,
        ge=1,
        le=1_000_000,
        description="Output tokens a quota reserves for a request without max_tokens, for a model whose "
        "own output limit Déjà does not know.",
    )


class CacheSettings(BaseModel):
    embedder: Literal["onnx", "local", "openai"] = Field(
        "onnx",
        description="onnx: all-MiniLM-L6-v2 int8 shipped with Déjà, on ONNX Runtime; local: a "
        "sentence-transformers model (needs PyTorch); openai: any OpenAI-compatible /v1/embeddings.",
    )
    embedder_model: str | None = Field(
        None, description="local: a model path; openai: the embedding model name (text-embedding-3-small)."
    )
    embedder_dimensions: int | None = Field(
        None, ge=8, le=4000, description="openai: vector size to ask for."
    )
    embedder_threads: int = Field(1, ge=1, le=16, description="CPU threads per model call.")
    embed_batch_window_ms: float = Field(
        0.0,
        ge=0,
        le=50,
        description="Wait this long to batch concurrent embeddings; 0 batches only what is queued.",
    )
    top_k: int = Field(5, ge=1, le=50, description="Nearest candidates the verifier reads.")
    ef_search: int = Field(64, ge=10, le=1000, description="HNSW search breadth (hnsw.ef_search).")
    max_aliases_per_entry: int = Field(
        16,
        ge=0,
        le=1000,
        description="Served paraphrases an entry remembers, so the same wording is an exact hit next time; 0: none.",
    )
    hit_flush_interval_s: float = Field(
        1.0,
        gt=0,
        le=60,
        description="Hit counts (hit_count, last_hit_at) are kept in memory and written this often.",
    )
    verifier_model_dir: Path | None = Field(
        None, description="A cross-encoder directory (model.onnx + tokenizer.json); default: the one shipped."
    )
    verifier_over_text: bool = Field(
        True,
        description="Read the pairs whose prompts paste one text (two requests about one email, log or "
        "clause) with a cross-encoder of their own; false: the cross-encoder above reads them too.",
    )
    verifier_over_text_model_dir: Path | None = Field(
        None,
        description="The cross-encoder for pairs whose prompts paste one text (model.onnx + "
        "tokenizer.json); default: the one shipped.",
    )
    verifier_first_pass_dir: Path | None = Field(
        None,
        description="A first pass distilled from the cross-encoder (`deja verifier distil`: model.onnx, "
        "tokenizer.json, band.json): it reads each pair first and decides where it is sure. None is "
        "shipped. Used only beside the cross-encoder it was distilled from.",
    )


class UISettings(BaseModel):
    session_secret: SecretStr | None = Field(
        None,
        min_length=32,
        description="Signs the dashboard's session and CSRF cookies (at least 32 characters). Unset: "
        "derived from the admin token; with no admin token either, random per process (sign-ins then "
        "end at restart and need a single worker).",
    )
    session_ttl_s: int = Field(
        8 * 3600, ge=60, le=30 * 86400, description="A dashboard sign-in lasts this long."
    )
    secure_cookies: bool = Field(
        True,
        description="Mark the dashboard's cookies Secure (browsers still accept them on http://localhost and "
        "127.0.0.1); false only to use the dashboard over plain HTTP from another host.",
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DEJA_",
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        # A refused setting is named, never echoed: it may be a secret (a token too short).
        hide_input_in_errors=True,
        # An empty variable is no setting (compose passes `DEJA_ADMIN_TOKEN: ${DEJA_ADMIN_TOKEN:-}`).
        env_ignore_empty=True,
    )

    database_url: str | None = Field(
        None,
        description="postgresql+asyncpg://user:password@host:5432/db. Unset: Déjà starts its embedded Postgres.",
    )
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Embedded Postgres data and local spool live here; default: the per-user data directory.",
    )
    host: str = Field("127.0.0.1", description="Address `deja serve` binds.")
    port: int = Field(8000, ge=1, le=65535, description="Port `deja serve` binds.")
    workers: int | None = Field(
        None,
        ge=1,
        le=64,
        description="Worker processes of `deja serve`; unset: one per CPU core this process may use.",
    )
    shutdown_grace_s: int = Field(
        30,
        ge=0,
        le=3600,
        description="On SIGTERM, `deja serve` waits this long for requests in flight; then it cuts"
        " them, each booked for what it delivered.",
    )
    admin_token: SecretStr | None = Field(
        None,
        min_length=16,
        description="Bearer token with the admin role (at least 16 characters; `openssl rand -hex 24` "
        "makes a good one). Unless `DEJA_UI__SESSION_SECRET` is set, the dashboard's session key is "
        "derived from it.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_prompts: bool = Field(False, description="Put prompt and response text in logs (off: privacy).")
    metrics_token: SecretStr | None = Field(
        None, description="When set, GET /metrics needs `Authorization: Bearer <token>` (401 without)."
    )
    migrate_on_start: bool = Field(True, description="`deja serve` upgrades the schema to head first.")
    ledger_rollup_interval_s: float = Field(
        300.0,
        ge=0,
        le=86_400,
        description="How often each worker rolls the ledger's closed hours into the hourly rollup that "
        "GET /admin/stats and the dashboard read, in the background (0, or at least 1); 0: only when "
        "they read it.",
    )
    config: Path | None = Field(None, description="TOML file with upstreams and model routes.")
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Largest request body accepted (413 above).")
    max_connections: int = Field(
        512,
        ge=1,
        description="Connections (and requests in progress) one worker takes at once; more are answered "
        "503 at once. With body_timeout_s it bounds what clients that stall can hold: at most this "
        "many bodies of max_body_bytes per worker.",
    )
    body_timeout_s: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="Time a request's body has to arrive once its headers have (408 after): a client "
        "that trickles its body holds a connection, and what it sent, no longer than this.",
    )
    limits: RequestLimits = Field(default_factory=RequestLimits)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    ui: UISettings = Field(default_factory=UISettings)

    @field_validator("database_url")
    @classmethod
    def _asyncpg(cls, value: str | None) -> str | None:
        return asyncpg_url(value)

    @field_validator("log_level", mode="before")
    @classmethod
    def _any_case(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("ledger_rollup_interval_s")
    @classmethod
    def _off_or_a_second(cls, value: float) -> float:
        if 0 < value < 1:
            raise ValueError("must be 0 (off) or at least 1 second")
        return value

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        # Fixed once, at start: a relative DEJA_DATA_DIR means the same folder to every process
        # this one starts (workers), and messages show where it really is.
        return value.expanduser().absolute()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


PREFIX = "DEJA_"


def variable_names() -> list[str]:
    """Every environment variable the settings read: `DEJA_PORT`, `DEJA_CACHE__TOP_K`, and each
    group whole as JSON (`DEJA_CACHE`)."""
    names = []
    for name, field in Settings.model_fields.items():
        names.append(PREFIX + name.upper())
        group = field.annotation
        if isinstance(group, type) and issubclass(group, BaseModel):
            names.extend(f"{PREFIX}{name.upper()}__{inner.upper()}" for inner in group.model_fields)
    return names


def misspelt_variables(environ: Mapping[str, str]) -> Iterator[str]:
    """`DEJA_*` variables the settings do not read but that look meant for them: inside a group
    (`DEJA_CACHE__TOPK`) or close to a setting's name (`DEJA_CONFIGG`). Others (a client's
    `DEJA_API_KEY`) are not Déjà's to judge."""
    known = variable_names()
    groups = {name.split("__")[0] for name in known if "__" in name}
    for variable in sorted(environ):
        upper = variable.upper()
        if not upper.startswith(PREFIX) or upper in known:
            continue
        # Close: one letter off, or two in a long name (`DEJA_BASE_URL`, a client's, is not).
        close = difflib.get_close_matches(upper, known, n=1, cutoff=0.9)
        if close:
            yield f"{variable} is not a setting, and is ignored: did you mean {close[0]}?"
        elif upper.split("__")[0] in groups and "__" in upper:
            yield f"{variable} is not a setting, and is ignored (docs/configuration.md lists them)"


def settings_problems(error: ValidationError) -> Iterator[str]:
    """A refused setting as the variable that holds it and the reason, never its value."""
    for problem in error.errors(include_input=False, include_url=False):
        variable = PREFIX + "__".join(str(part) for part in problem["loc"]).upper()
        context = problem.get("ctx") or {}
        if problem["type"] == "too_short" and "min_length" in context:
            reason = f"at least {context['min_length']} characters"
        else:
            reason = problem["msg"].removeprefix("Value error, ")
        yield f"{variable}: {reason}"
