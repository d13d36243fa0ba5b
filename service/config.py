"""Settings: the one place that reads the environment (prefix ``ICCS_``).

Every field here is documented in the README's settings table; a test keeps them in step.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.errors import InvalidInput

# The range any precision setting may take; a request's min_precision must also reach
# ``Settings.min_precision_floor``. Checked in one place: :meth:`Settings.check_min_precision`.
LOWEST_PRECISION = 0.5
HIGHEST_PRECISION = 0.999


class Settings(BaseSettings):
    """Runtime configuration of the service, the CLI and the training pipeline."""

    model_config = SettingsConfigDict(env_prefix="ICCS_", env_file=None, extra="ignore")

    data_dir: Path = Field(
        Path("../shared"), description="Reference data: ICCS manual texts and national lists."
    )
    registry_dir: Path = Field(Path("model_registry"), description="Model registry folder.")
    state_dir: Path = Field(
        Path("state"), description="Where the SQLite database, job files and uploads live."
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default: SQLite file in state_dir."
    )
    db_busy_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="Seconds a SQLite write waits for another writer's lock; after it the "
        "API answers 503 database_unavailable with Retry-After.",
    )
    target_precision: float = Field(
        0.95,
        ge=LOWEST_PRECISION,
        le=HIGHEST_PRECISION,
        description="Precision that automatic coding must reach.",
    )
    min_precision_floor: float = Field(
        0.80,
        ge=LOWEST_PRECISION,
        le=HIGHEST_PRECISION,
        description="Lowest min_precision a request, a job or `iccs classify-file` may ask for.",
    )
    host: str = Field("127.0.0.1", description="Address the API binds to.")
    port: int = Field(8000, ge=0, le=65535, description="Port the API listens on.")
    model_version: str | None = Field(
        None, description="Serve this registry version instead of the promoted one."
    )
    # Off by default: the accuracy figures in each registry entry are fp32's. The int8
    # encoder runs one text at a time, so its answers do not depend on batching either.
    use_int8: bool = Field(
        False,
        description="Serve the int8-quantised encoder when the entry ships one: about twice "
        "as fast; its top-1 code agrees with fp32 on the rate in the entry's metrics.json.",
    )
    inference_threads: int = Field(
        1,
        ge=0,
        description="ONNX Runtime threads per inference call (0: one per core). One thread per "
        "call lets concurrent requests run on separate cores, which is faster than splitting "
        "each call.",
    )
    key_cache_seconds: float = Field(
        10.0,
        ge=0,
        description="Seconds a verified API key is trusted without a database lookup. A key "
        "revoked through another process stops working here within this time (0: look up "
        "every request).",
    )
    inference_workers: int = Field(
        0,
        ge=0,
        description="Batches of one large request (a batch call) encoded at the same time, "
        "each on its own thread (0: one per core).",
    )
    max_text_length: int = Field(2000, ge=1, description="Longest record text accepted.")
    max_batch_size: int = Field(1000, ge=1, description="Most records in one batch call.")
    max_body_bytes: int = Field(5_000_000, ge=1024, description="Largest JSON request body.")
    max_upload_bytes: int = Field(
        500_000_000, ge=1024, description="Largest file accepted by POST /v1/jobs."
    )
    max_decompressed_bytes: int = Field(
        1_000_000_000,
        ge=1024,
        description="Most bytes a bulk XLSX file may unpack to, and a Parquet row group may "
        "hold uncompressed; larger files are refused (file_too_large) before they are parsed.",
    )
    max_uploads_per_key: int = Field(
        2,
        ge=0,
        description="Uploads to POST /v1/jobs one API key may stream at once; one more is "
        "refused (429) before its body is read (0: no cap).",
    )
    max_open_review_items_per_key: int = Field(
        100_000,
        ge=0,
        description="Open review items one API key may have created (classify calls and its "
        "jobs); a key at the limit gets 429 review_quota_exceeded before anything it sends is "
        "coded, and may retry when reviewers have decided some (0: no cap).",
    )
    rate_limit_per_minute: int = Field(
        6000,
        ge=0,
        description="Records per minute per API key: a batch costs its items, any other call "
        "1 (0 disables the limit).",
    )
    open_read_routes: bool = Field(
        False, description="Serve taxonomy and model routes without an API key."
    )
    api_docs: bool = Field(
        False,
        description="Serve the interactive API documentation (/docs, /redoc). They load Swagger "
        "UI and ReDoc from a CDN, so turn this on only where /review is not served to "
        "reviewers on the same origin. /openapi.json is always served.",
    )
    open_metrics: bool = Field(
        True,
        description="Serve /metrics without an API key (for an internal Prometheus scraper); "
        "false: any valid key.",
    )
    review_lease_seconds: int = Field(
        600, ge=1, description="How long a claimed review item stays with its reviewer."
    )
    retention_days: int = Field(
        0,
        ge=0,
        description="Days offence texts are kept (decided review items, their notes, decision "
        "memory, finished jobs' files): `iccs purge` without --older-than removes older ones; "
        "0: kept until an operator purges.",
    )
    memory_min_agreeing: int = Field(
        2,
        ge=1,
        description="Reviewers whose codes for a text must agree before decision memory codes "
        "identical texts automatically (an admin's decision is enough on its own); 1 trusts a "
        "single reviewer.",
    )
    decided_refresh_s: float = Field(
        60.0,
        gt=0,
        description="Seconds between full reloads of reviewers' decided examples by each "
        "instance (so retired decision-memory entries stop counting); new decisions count on "
        "the next request regardless.",
    )
    jobs_dir: Path | None = Field(
        None,
        description="Where bulk job files live (uploads, results, checkpoints); default: "
        "state_dir/jobs. With several instances or workers, one folder every one of them "
        "reaches (a shared filesystem).",
    )
    job_runner: Literal["embedded", "off"] = Field(
        "embedded",
        description="embedded: the API process runs queued bulk jobs in a thread; off: it only "
        "queues them and `iccs worker` processes run them.",
    )
    job_lease_seconds: float = Field(
        60.0,
        ge=1,
        description="How long a worker's claim on a running job lasts; the worker renews it "
        "every quarter of this. A job whose worker died is resumed by another after it.",
    )
    job_max_attempts: int = Field(
        3,
        ge=1,
        description="Starts a job gets (its worker died, lost its lease or hit an unexpected "
        "error) before it is marked failed.",
    )
    max_active_jobs_per_key: int = Field(
        20, ge=0, description="Jobs one API key may have queued or running at once (0: no limit)."
    )
    log_fingerprint_key: SecretStr | None = Field(
        None,
        description="Secret that keys the text fingerprint in log lines (HMAC-SHA256); default: "
        "a random one made once in state_dir/fingerprint.key (mode 0600). Set the same value "
        "on every instance to correlate their logs.",
    )
    log_level: str = Field("INFO", description="Python logging level.")

    def check_min_precision(self, value: float, field: str = "min_precision") -> float:
        """``value`` when it lies between the floor and the highest precision.

        The one check of a caller's min_precision (or table_precision, named by ``field``):
        the classify and model routes, job submission and the CLI all call it, so they
        accept and refuse the same values.
        """
        if self.min_precision_floor <= value <= HIGHEST_PRECISION:
            return value
        raise InvalidInput(
            f"{field} must be between {self.min_precision_floor} and {HIGHEST_PRECISION}.",
            field=field,
            minimum=self.min_precision_floor,
            maximum=HIGHEST_PRECISION,
        )

    def ensure_state_dir(self) -> Path:
        """The state directory, made if missing with owner-only permissions (0700).

        It holds offence texts (the SQLite database, job files) and the fingerprint secret,
        so other users of the host must not read it (issue 16 L10). A folder that exists is
        left as the operator set it.
        """
        if not self.state_dir.exists():
            self.state_dir.parent.mkdir(parents=True, exist_ok=True)
            self.state_dir.mkdir(mode=0o700, exist_ok=True)
            os.chmod(self.state_dir, 0o700)  # whatever the umask
        return self.state_dir

    def resolved_jobs_dir(self) -> Path:
        """The bulk jobs folder, defaulting to ``jobs`` under the state directory."""
        return self.jobs_dir if self.jobs_dir is not None else self.state_dir / "jobs"

    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file under the state directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.state_dir / 'iccs.sqlite3').resolve()}"


def get_settings() -> Settings:
    """Settings read from the environment now (tests build their own instead)."""
    return Settings()
