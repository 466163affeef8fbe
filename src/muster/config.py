"""Settings: typed, frozen, read once from MUSTER_* environment variables."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./muster.db"
# Where `muster serve` listens by default: the base of links made outside a request (the
# CLI's set-password links, the webhook worker's SET issuer) when MUSTER_PUBLIC_URL is unset.
DEFAULT_BASE_URL = "http://127.0.0.1:8000"


class Settings(BaseSettings):
    """Everything an operator can set; built by create_app() and the CLI, never at import."""

    model_config = SettingsConfigDict(env_prefix="MUSTER_", frozen=True, extra="ignore")

    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL; sqlite:///path (embedded) or postgresql://... (production).",
    )
    public_url: str | None = Field(
        None,
        description="External base URL, e.g. https://idp.example.com; used in meta.location. "
        "When unset, the request's own scheme and Host are used.",
    )
    max_body_bytes: int = Field(1024 * 1024, description="Largest SCIM request body accepted.")
    default_page_size: int = Field(100, description="Page size when a list names no count.")
    max_page_size: int = Field(1000, description="Largest page a list answers.")
    max_response_bytes: int = Field(
        4 * 1024 * 1024,
        ge=1,
        description="A list page stops taking resources once their JSON would pass this many "
        "bytes (it always holds at least one). 4 MiB keeps whole a page of 1,000 users of up "
        "to ~4 KB each (an IdP's user is ~1 KB) and bounds each list body's memory.",
    )
    cursor_keys: SecretStr | None = Field(
        None,
        description="Comma-separated keys (at least 32 characters each) that sign cursors: the "
        "first signs, all verify. Unset: a key from the database (services/paging.py).",
    )
    bulk_max_operations: int = Field(
        100,
        description="Most operations one /Bulk request may carry (maxOperations). Each runs as a "
        "request of its own (~0.5-1 ms of CPU): 100 keeps a /Bulk request near 100 ms.",
    )
    log_retention_days: int = Field(30, description="Provisioning log entries older are pruned.")
    log_max_entries: int = Field(
        100_000, description="Per tenant, only the newest entries of the provisioning log are kept."
    )
    log_flush_seconds: float = Field(
        0.2,
        description="Provisioning log entries are written in batches this often (0: at once).",
    )
    sqlite_busy_timeout_ms: int = Field(
        5000, ge=0, description="How long SQLite waits for its write lock before a 503."
    )
    create_demo_tenant: bool = Field(
        True, description="On the first `muster serve` against an empty database, add `demo`."
    )
    # Operating Muster (README "Operating Muster").
    log_format: Literal["json", "text"] = Field(
        "json", description="Process logs on stderr: one JSON object per line, or plain text."
    )
    log_level: str = Field("INFO", description="Level of the process logs on stderr.")
    rate_limit_requests: int = Field(
        60_000, ge=0, description="SCIM requests per token per window (0: no limit)."
    )
    rate_limit_window_seconds: int = Field(60, ge=1, description="The rate limit's window.")
    rate_limit_sync_seconds: float = Field(
        0.1,
        ge=0,
        description="How often each process adds its counts to the shared ones (0: after each).",
    )
    auth_failures_per_window: int = Field(
        60,
        ge=0,
        description="Failed authentications one client address may make per window before its "
        "requests get 429 until the window ends (0: no limit).",
    )
    auth_failure_window_seconds: int = Field(
        60, ge=1, description="The window of auth_failures_per_window."
    )
    db_pool_size: int = Field(
        5, ge=1, description="Connections kept open per process (SQLite and PostgreSQL)."
    )
    db_max_overflow: int = Field(
        10, ge=0, description="Extra connections opened under load, per process."
    )
    db_pool_timeout: float = Field(
        5,
        gt=0,
        description="Seconds a request waits for a free database connection (and the thread "
        "that uses it) before a 503.",
    )
    db_statement_timeout_ms: int = Field(
        10_000,
        ge=0,
        description="PostgreSQL: the server cancels any statement running longer, and the "
        "request gets a 503 (0: never).",
    )
    db_lock_timeout_ms: int = Field(
        3_000,
        ge=0,
        description="PostgreSQL: a statement waiting this long for a row or table lock is "
        "cancelled, and the request gets a 503 (0: never).",
    )
    db_connect_timeout_seconds: int = Field(
        3,
        ge=0,
        description="PostgreSQL: opening a connection gives up after this (at least 2; 0: never).",
    )
    request_timeout_seconds: float = Field(
        30,
        gt=0,
        description="The longest one request's database and CPU work may take before the client "
        "gets a 503 and the work is interrupted (a backstop behind the timeouts above).",
    )
    event_retention_days: int = Field(
        30,
        ge=1,
        description="Change events older are removed (GET /api/v1/events then answers 410 for "
        "a cursor from before them); the delivery worker prunes periodically.",
    )
    # Webhooks and their delivery worker (docs/webhooks.md).
    webhook_max_attempts: int = Field(
        30,
        ge=1,
        description="Attempts at one delivery before it is dead (30: about 21 hours of retries).",
    )
    webhook_backoff_base_seconds: float = Field(
        10, gt=0, description="Wait before the first retry; each later one doubles, with jitter."
    )
    webhook_backoff_max_seconds: float = Field(
        3600, gt=0, description="Longest wait between two attempts at one delivery."
    )
    webhook_timeout_seconds: float = Field(
        10, gt=0, description="A receiver must answer a delivery within this, or it failed."
    )
    webhook_lease_seconds: float = Field(
        60,
        gt=0,
        description="A delivery claimed by a worker that died is retried after this; keep it "
        "above webhook_timeout_seconds.",
    )
    webhook_retention_days: float = Field(
        7, gt=0, description="Delivered deliveries older are pruned (dead ones are kept)."
    )
    worker_poll_seconds: float = Field(
        0.05, gt=0, description="How often an idle worker looks for new events and due retries."
    )
    worker_concurrency: int = Field(
        16, ge=1, description="Deliveries one worker sends at the same time."
    )
    pin_cpu: bool = Field(
        True,
        description="`muster serve`: run each worker process on one CPU of its own (its "
        "threads hand Python's lock back and forth; across cores that doubles their CPU).",
    )
    serve_worker: bool = Field(
        True, description="`muster serve` starts one delivery worker as a child process."
    )
    webhook_allow_private_networks: bool = Field(
        False,
        description="Send webhooks to loopback, private and other non-public addresses too "
        "(off: a tenant's URL cannot reach the platform's internal network).",
    )
