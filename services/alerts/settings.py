from __future__ import annotations

from pydantic import Field
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
    delivery_timeout_s: float = Field(default=15.0, gt=0)
    # A leased delivery whose worker died is taken over after this long; must exceed the timeout.
    lease_s: float = Field(default=60.0, gt=0)
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
