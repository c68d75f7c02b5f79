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
    # Reads of a KPI's stored history (GET /v1/kpis/{id}, with or without as_of) cost a scan of
    # the observations on FerretDB: at most this many run at once, more are answered 429 with
    # Retry-After, so readers cannot take the database (or the event loop) from the consumer.
    # (Measured on FerretDB/SQLite: four at once still tripled an event's ingest-to-stored
    # time; two kept it within about twice the idle figure.)
    max_concurrent_history_reads: int = Field(default=2, ge=1)
    history_read_retry_after_s: int = Field(default=2, ge=1)
    # What one history read may cost the database server (maxTimeMS, honoured by MongoDB and
    # FerretDB alike): beyond it the read is stopped there and answered 503 with Retry-After.
    # (On FerretDB/SQLite a read scans the whole observations collection: 40,000 took 9-14 s
    # on the shared 2-core test machine.)
    history_read_max_time_s: float = Field(default=30.0, gt=0)
    # One answer lists at most this many observations (the latest).
    observations_shown: int = Field(default=1000, ge=1)
    # An as_of evaluation folds at most this many of the latest events up to the date (the
    # state keeps a bounded window; the answer says when older events were left out).
    as_of_events_limit: int = Field(default=10_000, ge=1)
