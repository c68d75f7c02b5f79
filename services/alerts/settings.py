from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from services.alerts.domain.retry import DEFAULT_SCHEDULE_S
from shared.settings import MongoSettings, ServiceSettings, service_mongo

DAY_S = 86_400.0


class AlertsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SHINCHOKU_ALERTS_")

    mongo: MongoSettings = service_mongo("alerts")

    consumer_group: str = "shinchoku-alerts"
    # Delivery: Standard Webhooks' recommendations, each overridable (tests compress the schedule).
    retry_schedule_s: list[float] = Field(
        default_factory=lambda: list(DEFAULT_SCHEDULE_S), min_length=1
    )
    retry_jitter: float = Field(default=0.1, ge=0, lt=1)
    # The TOTAL deadline of one attempt: connect + send + the whole response (not per read).
    delivery_timeout_s: float = Field(default=15.0, gt=0)
    # At most this much of a response body is read (raw bytes); the rest is left unread.
    max_response_bytes: int = Field(default=64 * 1024, ge=0)
    # Time a lease keeps beyond the deadline, for the bookkeeping before and after the send.
    lease_margin_s: float = Field(default=15.0, gt=0)
    # A leased delivery whose worker died is taken over after this long. Unset: derived as
    # delivery_timeout_s + lease_margin_s; set, it may not be shorter (two attempts of one
    # delivery would overlap).
    lease_s: float | None = Field(default=None, gt=0)
    max_concurrent_deliveries: int = Field(default=32, ge=1)
    # So one slow or failing endpoint cannot occupy every delivery slot.
    max_concurrent_per_subscription: int = Field(default=4, ge=1)
    # An endpoint failing every attempt for this long is disabled (410 Gone disables at once).
    disable_after_failing_s: float = Field(default=5 * DAY_S, gt=0)
    # SSRF guard: addresses/networks targets may resolve to despite it (e.g. ["127.0.0.1/32"]).
    allowed_target_networks: list[str] = Field(default_factory=list)
    # Base of the KPI links in webhook bodies (the kpi service's public API).
    public_api_url: str = "http://127.0.0.1:8002"
    # Notification policy.
    grouping_window_s: float = Field(default=30.0, ge=0)
    max_changes_per_delivery: int = Field(default=50, ge=1)
    reminder_interval_s: float = Field(default=7 * DAY_S, ge=0)
    secret_overlap_s: float = Field(default=DAY_S, ge=0)
    # Background loops.
    worker_poll_s: float = Field(default=0.5, gt=0)
    batcher_poll_s: float = Field(default=0.25, gt=0)
    reminder_check_s: float = Field(default=60.0, gt=0)
    # A notification claimed into a delivery by an instance that died is finished after this.
    claim_recovery_s: float = Field(default=30.0, gt=0)
    metrics_refresh_s: float = Field(default=5.0, gt=0)

    @property
    def effective_lease_s(self) -> float:
        return self.lease_s if self.lease_s is not None else self.minimum_lease_s

    @property
    def minimum_lease_s(self) -> float:
        return self.delivery_timeout_s + self.lease_margin_s

    @model_validator(mode="after")
    def _lease_outlasts_an_attempt(self) -> Self:
        if self.lease_s is not None and self.lease_s < self.minimum_lease_s:
            raise ValueError(
                f"lease_s ({self.lease_s:g} s) must be at least delivery_timeout_s + "
                f"lease_margin_s ({self.minimum_lease_s:g} s): a shorter lease lets a second "
                "attempt of a delivery start while the first is still open"
            )
        return self
