"""Settings: typed, frozen, read once from MUSTER_* environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./muster.db"


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
    bulk_max_operations: int = Field(
        1000, description="Most operations one /Bulk request may carry (maxOperations)."
    )
    log_retention_days: int = Field(30, description="Provisioning log entries older are pruned.")
    log_max_entries: int = Field(
        100_000, description="Per tenant, only the newest entries of the provisioning log are kept."
    )
    log_flush_seconds: float = Field(
        0.2,
        description="Provisioning log entries are written in batches this often (0: at once).",
    )
    sqlite_busy_timeout_ms: int = Field(5000, description="How long SQLite waits for a lock.")
    create_demo_tenant: bool = Field(
        True, description="On the first `muster serve` against an empty database, add `demo`."
    )
