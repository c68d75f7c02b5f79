"""Settings of the ingest service (env prefix ``SHINCHOKU_INGEST_``, nested groups with ``__``)."""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import SettingsConfigDict

from shared.settings import MongoSettings, ServiceSettings, service_mongo


class Limits(BaseModel):
    """What one request may carry. Documented in the OpenAPI descriptions from these values."""

    max_event_bytes: int = Field(default=64 * 1024, ge=1024)
    max_batch_events: int = Field(default=500, ge=1)
    max_batch_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)


class RateLimit(BaseModel):
    """A token bucket per API key; each event costs one token (a batch of 40 costs 40)."""

    events_per_s: float = Field(default=500.0, gt=0)
    burst: int = Field(default=2_000, ge=1)


class IngestSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SHINCHOKU_INGEST_")

    mongo: MongoSettings = service_mongo("ingest")

    limits: Limits = Limits()
    rate_limit: RateLimit = RateLimit()
    # How long an API key lookup is cached in-process: a revoked key stops working on every
    # instance within this bound (at once on the instance that revoked it).
    key_cache_ttl_s: float = Field(default=5.0, ge=0)
    # How long catalogue entries are cached in-process: a reload or a run-time ownership change
    # (admin API, `shinchoku catalogue set-owners`) is seen by every instance within this bound
    # (at once on the instance that made the change).
    catalogue_cache_ttl_s: float = Field(default=5.0, ge=0)
    # How often recorded ownership changes not yet on the events topic are published to the kpi
    # service (a failed publish, a change made with the CLI):
    # services/ingest/service/ownership_propagation.py.
    ownership_publish_interval_s: float = Field(default=5.0, gt=0)
    # A claim left pending (a crash between claim and publish) may be taken over by a new
    # submission of the same event after this many seconds; None = 2 x the delivery timeout.
    pending_takeover_s: float | None = Field(default=None, gt=0)
    # Retry-After sent with 503 answers when Kafka did not acknowledge.
    unavailable_retry_after_s: int = Field(default=5, ge=1)
    # How far an event's `time` may be ahead of the receive time (the sender's clock skew).
    max_time_ahead_s: float = Field(default=300.0, ge=0)

    @model_validator(mode="after")
    def _batch_fits_the_bucket(self) -> IngestSettings:
        if self.rate_limit.burst < self.limits.max_batch_events:
            raise ValueError(
                f"rate_limit.burst ({self.rate_limit.burst}) must be at least "
                f"limits.max_batch_events ({self.limits.max_batch_events}), "
                "or a full batch could never be admitted"
            )
        return self

    @property
    def takeover_after_s(self) -> float:
        return self.pending_takeover_s or 2 * self.kafka.delivery_timeout_s
