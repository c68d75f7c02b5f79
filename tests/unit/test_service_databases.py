"""A database per service: each service's settings name its own database, and the infrastructure
commands address every service's database by the variables that service reads."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from services.alerts.settings import AlertsSettings
from services.ingest.settings import IngestSettings
from services.kpi.settings import KpiSettings
from shared.settings import SERVICE_DATABASES, InfraSettings, ServiceSettings

SETTINGS: dict[str, type[ServiceSettings]] = {
    "ingest": IngestSettings,
    "kpi": KpiSettings,
    "alerts": AlertsSettings,
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("SHINCHOKU_") and "MONGO" in key:
            monkeypatch.delenv(key)


def test_each_service_has_its_own_database_by_default() -> None:
    """Three services, three databases, and the infrastructure commands agree on each."""
    infra = InfraSettings().service_databases()
    names = {name: cls().mongo.database for name, cls in SETTINGS.items()}
    assert names == SERVICE_DATABASES
    assert len(set(names.values())) == 3
    assert {name: mongo.database for name, mongo in infra.items()} == names


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_a_service_moved_to_another_server_keeps_its_database_name(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the URL given: the service keeps its own database name (the group is merged into
    its default, not rebuilt from MongoSettings' defaults)."""
    monkeypatch.setenv(f"SHINCHOKU_{name.upper()}_MONGO__URL", "mongodb://elsewhere:27017")
    settings = SETTINGS[name]()
    assert settings.mongo.url == "mongodb://elsewhere:27017"
    assert settings.mongo.database == SERVICE_DATABASES[name]


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_infra_commands_read_each_services_own_variables(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`infra init`, `catalogue load` and `keys` write where the service reads."""
    monkeypatch.setenv(f"SHINCHOKU_{name.upper()}_MONGO__URL", f"mongodb://{name}-host:27017")
    monkeypatch.setenv(f"SHINCHOKU_{name.upper()}_MONGO__DATABASE", f"custom_{name}")
    service = SETTINGS[name]().mongo
    infra = InfraSettings().service_databases()[name]
    assert (infra.url, infra.database) == (service.url, service.database)
    assert (infra.url, infra.database) == (f"mongodb://{name}-host:27017", f"custom_{name}")


def test_the_catalogue_is_copied_into_the_databases_of_the_services_that_read_it() -> None:
    """ingest (ownership, kinds) and kpi (definitions); alerts reads none of it."""
    infra = InfraSettings()
    assert infra.catalogue_databases() == {"ingest": infra.ingest_mongo, "kpi": infra.kpi_mongo}


def test_a_shared_database_variable_is_refused_rather_than_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SHINCHOKU_MONGO__URL once named the one shared database: now an error says what to set."""
    monkeypatch.setenv("SHINCHOKU_MONGO__URL", "mongodb://somewhere:27017")
    with pytest.raises(ValidationError, match="SHINCHOKU_KPI_MONGO__"):
        InfraSettings()
