from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.alerts.domain.retry import DEFAULT_SCHEDULE_S
from shared.settings import ServiceSettings


class AlertsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SHINCHOKU_ALERTS_")

    consumer_group: str = "shinchoku-alerts"
    retry_schedule_s: list[float] = Field(default_factory=lambda: list(DEFAULT_SCHEDULE_S))
    delivery_timeout_s: float = 15.0
    lease_s: float = 60.0
    # Addresses/networks webhook targets may resolve to despite the SSRF guard (e.g. 127.0.0.1/32).
    allowed_target_networks: list[str] = Field(default_factory=list)
    public_api_url: str = "http://127.0.0.1:8002"
    worker_poll_s: float = 0.5
