"""Settings shared by every service: Kafka, topics, MongoDB, admin token, logging.

Each service subclasses `ServiceSettings` with its own ``env_prefix`` (``SHINCHOKU_INGEST_``, ...);
nested groups use ``__``: ``SHINCHOKU_KPI_KAFKA__BOOTSTRAP_SERVERS``. Settings are built once in a
service's composition root and passed down; nothing reads the environment at import time.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSettings(BaseModel):
    bootstrap_servers: str = "127.0.0.1:9092"
    client_id: str = "shinchoku"
    request_timeout_ms: int = 15_000
    # How long a produce may wait for the broker before the caller is told it failed.
    delivery_timeout_s: float = 10.0
    # Who this client is to the broker. The local stack and docker-compose run SASL/SCRAM with
    # ACLs, one principal per service (deploy/README.md, "Who may write to Kafka"); PLAINTEXT
    # without credentials only reaches a broker that authorises nobody. SASL_SSL in production.
    security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256"] = "SCRAM-SHA-512"
    username: str | None = None
    password: SecretStr | None = None


class TopicSettings(BaseModel):
    events: str = "shinchoku.events.v1"
    status: str = "shinchoku.status.v1"
    dead_letter: str = "shinchoku.events.dlq.v1"
    partitions: int = Field(default=6, ge=1)
    replication_factor: int = Field(default=1, ge=1)


class MongoSettings(BaseModel):
    url: str = "mongodb://127.0.0.1:27017"
    database: str = "shinchoku"
    server_selection_timeout_ms: int = 5_000


# Each service owns one database (and may be given its own server): nothing reads another
# service's collections. The catalogue is the one shared input, and `shinchoku catalogue load`
# writes a copy of it into the database of every service that reads it.
SERVICE_DATABASES = {
    "ingest": "shinchoku_ingest",
    "kpi": "shinchoku_kpi",
    "alerts": "shinchoku_alerts",
}
# ingest checks ownership and kinds against it; kpi evaluates against its definitions.
CATALOGUE_READERS = ("ingest", "kpi")


def service_mongo(service: str) -> MongoSettings:
    """A service's default database settings (its settings class's `mongo` default)."""
    return MongoSettings(database=SERVICE_DATABASES[service])


class ServiceSettings(BaseSettings):
    # Partial update: SHINCHOKU_KPI_MONGO__URL alone keeps the kpi service's own database name
    # (a nested group given by the environment is merged into the field's default, not rebuilt).
    model_config = SettingsConfigDict(
        env_prefix="SHINCHOKU_",
        env_nested_delimiter="__",
        extra="ignore",
        populate_by_name=True,
        nested_model_default_partial_update=True,
    )

    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()
    mongo: MongoSettings = MongoSettings()
    # One admin token for every service, deliberately without the service prefix.
    admin_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SHINCHOKU_ADMIN_TOKEN")
    )
    log_level: str = "INFO"
    # JSON logs unless explicitly asked for console rendering (developers at a terminal).
    log_json: bool = True
    readiness_timeout_s: float = 2.0


class InfraSettings(ServiceSettings):
    """For the CLI's infrastructure commands: topics, every service's indexes, the catalogue
    copies, API keys.

    Each service's database is read from the variables that service itself reads
    (``SHINCHOKU_INGEST_MONGO__URL``, ``SHINCHOKU_KPI_MONGO__DATABASE``, ...: the field
    ``ingest_mongo`` under the prefix ``SHINCHOKU_`` is the same variable as ``mongo`` under
    ``SHINCHOKU_INGEST_``), so these commands write where the services look.
    """

    model_config = SettingsConfigDict(env_prefix="SHINCHOKU_")

    ingest_mongo: MongoSettings = service_mongo("ingest")
    kpi_mongo: MongoSettings = service_mongo("kpi")
    alerts_mongo: MongoSettings = service_mongo("alerts")

    @model_validator(mode="after")
    def _no_shared_database(self) -> InfraSettings:
        if "mongo" in self.model_fields_set:
            raise ValueError(
                "SHINCHOKU_MONGO__* is not read: each service has its own database, set by "
                "SHINCHOKU_INGEST_MONGO__*, SHINCHOKU_KPI_MONGO__* and SHINCHOKU_ALERTS_MONGO__*"
            )
        return self

    def service_databases(self) -> dict[str, MongoSettings]:
        return {"ingest": self.ingest_mongo, "kpi": self.kpi_mongo, "alerts": self.alerts_mongo}

    def catalogue_databases(self) -> dict[str, MongoSettings]:
        """Where `shinchoku catalogue load` writes its copies."""
        databases = self.service_databases()
        return {service: databases[service] for service in CATALOGUE_READERS}
