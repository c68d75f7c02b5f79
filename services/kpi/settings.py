from __future__ import annotations

from pydantic import AwareDatetime, Field
from pydantic_settings import SettingsConfigDict

from shared.settings import MongoSettings, ServiceSettings, service_mongo


class KpiSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SHINCHOKU_KPI_")

    mongo: MongoSettings = service_mongo("kpi")

    consumer_group: str = "shinchoku-kpi"
    # How often time alone is allowed to change statuses (deadlines passing, reports going stale).
    sweep_interval_s: float = 300.0
    # Days the service's clock runs ahead of real time (simulation and tests only; 0 in production).
    clock_offset_days: float = 0.0
    # Simulation only (`make demo`): service time runs this many times faster than real time from
    # `clock_start` (a real instant; the process start when unset). With a negative offset the
    # clock starts that far behind, catches up with real time and then keeps to it.
    clock_rate: float = Field(default=1.0, ge=1.0)
    clock_start: AwareDatetime | None = None
