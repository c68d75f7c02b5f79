"""docker-compose.yml and the services' Dockerfiles, checked statically: no Docker engine needed."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from pydantic import AliasChoices, BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from services.alerts.settings import AlertsSettings
from services.ingest.settings import IngestSettings
from services.kpi.settings import KpiSettings
from shared.cli import build_parser
from shared.settings import InfraSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
COMPOSE_SCHEMA = ROOT / "tests" / "support" / "schemas" / "compose-spec.json"
SERVICES = ("ingest", "kpi", "alerts")
# Every compose service built from this repository, and the settings class its process reads.
SETTINGS: dict[str, type[BaseSettings]] = {
    "ingest": IngestSettings,
    "kpi": KpiSettings,
    "alerts": AlertsSettings,
    "init": InfraSettings,
}
SERVICE_PORT = 8000
# What the host must provide; everything else in the file has a default.
HOST_ENVIRONMENT = {
    "SHINCHOKU_ADMIN_TOKEN": "compose-test-token",
    "SHINCHOKU_KAFKA_ADMIN_PASSWORD": "kafka-admin-pw",
    "SHINCHOKU_KAFKA_INGEST_PASSWORD": "kafka-ingest-pw",
    "SHINCHOKU_KAFKA_KPI_PASSWORD": "kafka-kpi-pw",
    "SHINCHOKU_KAFKA_ALERTS_PASSWORD": "kafka-alerts-pw",
}
KAFKA_START = ROOT / "deploy" / "compose" / "kafka-start.sh"


# --- helpers -------------------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_]\w*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\})")


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`."""

    def one(match: re.Match[str]) -> str:
        name = match.group("name")
        if name is None:
            return "$"
        op, arg = match.group("op") or "", match.group("arg") or ""
        unset = name not in env or (op.startswith(":") and env[name] == "")
        if not unset:
            return env[name]
        if op.endswith("?"):
            raise LookupError(f"{name}: {arg}")
        return arg if op.endswith("-") else ""

    return _VARIABLE.sub(one, value)


def settings_variables(cls: type[BaseSettings]) -> dict[str, tuple[str, ...]]:
    """Every environment variable `cls` reads, mapped to the field path it fills."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    delimiter = cls.model_config.get("env_nested_delimiter")
    found: dict[str, tuple[str, ...]] = {}

    def walk(fields: Mapping[str, FieldInfo], base: str, path: tuple[str, ...]) -> None:
        for name, field in fields.items():
            group = field.annotation
            if isinstance(group, type) and issubclass(group, BaseModel) and delimiter:
                walk(group.model_fields, f"{base}{name}{delimiter}", (*path, name))
            else:
                found[f"{base}{name}".upper()] = (*path, name)

    for name, field in cls.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            # pydantic-settings reads each string choice as an environment name, without prefix.
            found.update({c.upper(): (name,) for c in alias.choices if isinstance(c, str)})
        elif isinstance(alias, str):
            found[alias.upper()] = (name,)
        else:
            walk({name: field}, prefix, ())
    return found


def field_value(settings: BaseSettings, path: tuple[str, ...]) -> Any:
    value: Any = settings
    for part in path:
        value = getattr(value, part)
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    return [(words[0].upper(), words[1].strip()) for words in (s.split(None, 1) for s in logical)]


def instruction(path: Path, name: str) -> list[str]:
    return [args for keyword, args in dockerfile_instructions(path) if keyword == name]


def mounts(service: Mapping[str, Any]) -> dict[str, str]:
    """Container path -> source of each short-syntax volume (`source:target[:mode]`)."""
    result = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        result[target] = source
    return result


def container_ports(service: Mapping[str, Any]) -> set[int]:
    return {int(str(port).rsplit(":", 1)[-1]) for port in service.get("ports", [])}


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


# --- the file as a whole -------------------------------------------------------------------------


def test_compose_file_validates_against_the_compose_specification(compose: dict[str, Any]) -> None:
    """docker-compose.yml is valid under the Compose Specification's JSON schema."""
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    # The schema names draft-07 without the trailing '#' jsonschema looks the draft up by.
    assert "draft-07" in schema["$schema"]
    jsonschema.Draft7Validator.check_schema(schema)
    errors = [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in jsonschema.Draft7Validator(schema).iter_errors(compose)
    ]
    assert errors == []


def test_every_service_built_here_has_its_settings_class_checked(
    services: dict[str, dict[str, Any]],
) -> None:
    """Each service built from this repository is one whose environment the tests below check."""
    assert {name for name, service in services.items() if "build" in service} == set(SETTINGS)


def test_every_interpolation_resolves_given_only_the_host_secrets() -> None:
    """Apart from SHINCHOKU_ADMIN_TOKEN and the Kafka passwords, every `${...}` in the file has a
    default; each of those is required."""
    # Comments are left out: the header quotes `${VAR:?...}` to explain it.
    lines = COMPOSE_FILE.read_text().splitlines()
    body = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    resolved = interpolate(body, HOST_ENVIRONMENT)
    assert "${" not in resolved
    for name in HOST_ENVIRONMENT:
        with pytest.raises(LookupError, match=name):
            interpolate(body, {k: v for k, v in HOST_ENVIRONMENT.items() if k != name})


# --- environment ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_every_variable_given_to_a_service_is_read_by_its_settings(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    """Every environment variable compose gives a service is one its settings class reads."""
    given = set(services[name].get("environment", {}))
    read = set(settings_variables(SETTINGS[name]))
    assert given, f"{name} is given no environment at all"
    assert given - read == set()


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_compose_environment_lands_on_the_intended_settings_fields(
    services: dict[str, dict[str, Any]], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Built from compose's environment, a service's settings hold exactly the values given."""
    cls = SETTINGS[name]
    variables = settings_variables(cls)
    given = {
        k: interpolate(str(v), HOST_ENVIRONMENT) for k, v in services[name]["environment"].items()
    }
    for key in list(variables):
        monkeypatch.delenv(key, raising=False)
    for key, value in given.items():
        monkeypatch.setenv(key, value)
    settings = cls()
    for key, value in given.items():
        actual = field_value(settings, variables[key])
        expected = value if isinstance(actual, str) else json.loads(value)
        assert actual == expected, key


@pytest.mark.parametrize("name", SERVICES)
def test_services_reach_kafka_and_mongo_by_their_compose_names(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    """Each service is pointed at the compose network's kafka:9092 and mongo:27017."""
    prefix = f"SHINCHOKU_{name.upper()}_"
    environment = services[name]["environment"]
    kafka_host, kafka_port = environment[f"{prefix}KAFKA__BOOTSTRAP_SERVERS"].split(":")
    mongo = urlsplit(environment[f"{prefix}MONGO__URL"])
    assert (kafka_host, kafka_port) == ("kafka", "9092")
    assert (mongo.hostname, mongo.port) == ("mongo", 27017)
    assert {"kafka", "mongo"} <= set(services)


def test_init_prepares_and_loads_exactly_the_databases_the_services_read(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each service has its own database, and the one-shot init (indexes, catalogue copies)
    addresses each service's database by the same server and name the service reads."""

    def built(name: str) -> BaseSettings:
        cls = SETTINGS[name]
        for key in settings_variables(cls):
            monkeypatch.delenv(key, raising=False)
        for key, value in services[name]["environment"].items():
            monkeypatch.setenv(key, interpolate(str(value), HOST_ENVIRONMENT))
        settings = cls()
        for key in services[name]["environment"]:
            monkeypatch.delenv(key)
        return settings

    init = built("init")
    assert isinstance(init, InfraSettings)
    used = {}
    for name in SERVICES:
        service = built(name)
        assert isinstance(service, IngestSettings | KpiSettings | AlertsSettings)
        used[name] = (service.mongo.url, service.mongo.database)
        target = init.service_databases()[name]
        assert (target.url, target.database) == used[name], name
    assert len({database for _, database in used.values()}) == len(SERVICES)
    assert set(init.catalogue_databases()) == {"ingest", "kpi"}


@pytest.mark.parametrize("name", SERVICES)
def test_admin_token_comes_from_the_host_and_has_no_default(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    """SHINCHOKU_ADMIN_TOKEN is required from the host (`${VAR:?...}`), never a shared default."""
    value = services[name]["environment"]["SHINCHOKU_ADMIN_TOKEN"]
    assert value.startswith("${SHINCHOKU_ADMIN_TOKEN:?")
    assert interpolate(value, HOST_ENVIRONMENT) == HOST_ENVIRONMENT["SHINCHOKU_ADMIN_TOKEN"]
    with pytest.raises(LookupError):
        interpolate(value, {"SHINCHOKU_ADMIN_TOKEN": ""})


# --- start-up order ------------------------------------------------------------------------------


def test_kafka_and_mongo_have_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    """Kafka answers a topic listing and MongoDB a ping before anything that needs them starts."""
    kafka = services["kafka"]["healthcheck"]["test"]
    mongo = services["mongo"]["healthcheck"]["test"]
    assert kafka[0] == "CMD"
    assert kafka[1] == "/opt/kafka/bin/kafka-topics.sh"
    assert kafka[kafka.index("--bootstrap-server") + 1] == "localhost:9092"
    assert "--list" in kafka
    assert mongo[:2] == ["CMD", "mongosh"]
    assert "db.adminCommand('ping')" in mongo


@pytest.mark.parametrize("name", [*SERVICES, "init"])
def test_services_wait_for_healthy_kafka_and_mongo(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    """A service (and the init job) starts only once Kafka and MongoDB report healthy."""
    depends = services[name]["depends_on"]
    assert depends["kafka"]["condition"] == "service_healthy"
    assert depends["mongo"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", SERVICES)
def test_services_start_after_init_has_succeeded(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    """Topics and indexes exist before any service starts: it waits for init to exit 0."""
    assert services[name]["depends_on"]["init"]["condition"] == "service_completed_successfully"
    assert services[name]["restart"] == "unless-stopped"


def test_kafka_does_not_create_topics_on_first_use(services: dict[str, dict[str, Any]]) -> None:
    """Topics come from init, with the configured partitions, not from auto-creation."""
    environment = services["kafka"]["environment"]
    assert environment["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert environment["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "INTERNAL://kafka:9092" in environment["KAFKA_ADVERTISED_LISTENERS"].split(",")


def test_kafka_authenticates_every_listener_and_authorises_by_acl(
    services: dict[str, dict[str, Any]],
) -> None:
    """SASL on every listener (SCRAM for clients, PLAIN for the controller), the KRaft
    authorizer, no access without an ACL, the admin and controller as the only super users."""
    environment = services["kafka"]["environment"]
    protocols = dict(
        pair.split(":") for pair in environment["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    listeners = {entry.split("://")[0] for entry in environment["KAFKA_LISTENERS"].split(",")}
    assert set(protocols) == listeners
    assert set(protocols.values()) == {"SASL_PLAINTEXT"}
    assert environment["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert environment["KAFKA_SASL_MECHANISM_CONTROLLER_PROTOCOL"] == "PLAIN"
    assert (
        environment["KAFKA_AUTHORIZER_CLASS_NAME"]
        == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    )
    assert environment["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert environment["KAFKA_SUPER_USERS"] == "User:admin;User:controller"


def test_kafka_starts_with_this_projects_script_that_adds_the_scram_users(
    services: dict[str, dict[str, Any]],
) -> None:
    """The broker starts from deploy/compose/kafka-start.sh, which formats the storage with one
    SCRAM user per service and the admin, from the same variables the services are given; the
    healthcheck authenticates with the admin client file the script writes."""
    kafka = services["kafka"]
    script_path = kafka["command"][-1]
    assert mounts(kafka)[script_path] == "./deploy/compose/kafka-start.sh"
    script = KAFKA_START.read_text()
    for user in ("admin", "ingest", "kpi", "alerts"):
        variable = f"SHINCHOKU_KAFKA_{user.upper()}_PASSWORD"
        assert f'$(scram {user} "${variable}")' in script
        assert kafka["environment"][variable].startswith(f"${{{variable}:?")
    healthcheck = kafka["healthcheck"]["test"]
    admin_file = healthcheck[healthcheck.index("--command-config") + 1]
    assert admin_file == "/tmp/shinchoku/admin.properties"
    assert 'cat > "$work/admin.properties"' in script
    assert "work=${SHINCHOKU_KAFKA_WORK:-/tmp/shinchoku}" in script


@pytest.mark.parametrize("name", [*SERVICES, "init"])
def test_each_client_is_its_own_kafka_principal(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    """Each service authenticates as itself with the password the broker's user was created
    with; init as the admin (it creates topics and ACLs)."""
    prefix = "SHINCHOKU_" if name == "init" else f"SHINCHOKU_{name.upper()}_"
    user = "admin" if name == "init" else name
    environment = services[name]["environment"]
    password = interpolate(environment[f"{prefix}KAFKA__PASSWORD"], HOST_ENVIRONMENT)
    assert environment[f"{prefix}KAFKA__SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
    assert environment[f"{prefix}KAFKA__SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert environment[f"{prefix}KAFKA__USERNAME"] == user
    assert password == HOST_ENVIRONMENT[f"SHINCHOKU_KAFKA_{user.upper()}_PASSWORD"]


def test_init_runs_infra_init_then_catalogue_load(services: dict[str, dict[str, Any]]) -> None:
    """init runs `shinchoku infra init`, `shinchoku kafka acls` and then `shinchoku catalogue
    load`, all real commands."""
    init = services["init"]
    assert init["restart"] == "no"
    shell, flag, script = init["command"]
    assert (shell, flag) == ("sh", "-c")
    steps = [shlex.split(step) for step in script.split("&&")]
    assert [step[:3] for step in steps] == [
        ["shinchoku", "infra", "init"],
        ["shinchoku", "kafka", "acls"],
        ["shinchoku", "catalogue", "load"],
    ]
    parser = build_parser()
    for step in steps:
        assert callable(parser.parse_args(step[1:]).handler), step


# --- images --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_is_built_from_its_own_dockerfile(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    """A service builds from services/<name>/Dockerfile with the repository root as context."""
    build = services[name]["build"]
    assert (ROOT / build["context"]).resolve() == ROOT
    assert build["dockerfile"] == f"services/{name}/Dockerfile"
    assert (ROOT / build["dockerfile"]).is_file()


@pytest.mark.parametrize("name", SERVICES)
def test_dockerfile_runs_the_service_module_on_port_8000(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    """The image runs `python -m services.<name>` on 0.0.0.0:8000, the port compose publishes."""
    dockerfile = ROOT / "services" / name / "Dockerfile"
    (cmd,) = instruction(dockerfile, "CMD")
    assert json.loads(cmd) == [
        "python", "-m", f"services.{name}", "--host", "0.0.0.0", "--port", str(SERVICE_PORT)
    ]  # fmt: skip
    assert instruction(dockerfile, "EXPOSE") == [str(SERVICE_PORT)]
    assert container_ports(services[name]) == {SERVICE_PORT}


@pytest.mark.parametrize("name", SERVICES)
def test_dockerfile_runs_as_a_non_root_user_with_a_liveness_check(name: str) -> None:
    """The runtime stage drops root and checks /healthz on the service port with Python."""
    dockerfile = ROOT / "services" / name / "Dockerfile"
    users = instruction(dockerfile, "USER")
    assert users
    assert users[-1] not in {"root", "0", "0:0"}
    (healthcheck,) = instruction(dockerfile, "HEALTHCHECK")
    assert f"http://127.0.0.1:{SERVICE_PORT}/healthz" in healthcheck
    assert '"python", "-c"' in healthcheck


def test_dockerfiles_differ_only_in_the_service_name() -> None:
    """The three Dockerfiles are one file with the service name substituted: they cannot drift."""
    texts = {
        name: (ROOT / "services" / name / "Dockerfile").read_text().replace(name, "<service>")
        for name in SERVICES
    }
    assert len(set(texts.values())) == 1


def test_dockerfile_copies_only_files_that_exist_and_are_in_the_build_context() -> None:
    """Every COPY source exists at the repository root and is not excluded by .dockerignore."""
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copies = [
        args.split()[:-1]
        for args in instruction(ROOT / "services" / "ingest" / "Dockerfile", "COPY")
        if not args.startswith("--from")
    ]
    sources = [source for sources in copies for source in sources]
    assert {"pyproject.toml", "uv.lock", "shared", "services"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), source


# --- Prometheus and Grafana ----------------------------------------------------------------------


def test_prometheus_mounts_this_projects_config_and_rules(
    services: dict[str, dict[str, Any]],
) -> None:
    """Prometheus reads deploy/prometheus/prometheus.yml and the rules directory it names."""
    prometheus = services["prometheus"]
    volumes = mounts(prometheus)
    config_source = ROOT / volumes["/etc/prometheus/prometheus.yml"]
    rules_source = ROOT / volumes["/etc/prometheus/rules"]
    assert config_source.resolve() == ROOT / "deploy" / "prometheus" / "prometheus.yml"
    assert rules_source.resolve() == ROOT / "deploy" / "prometheus" / "rules"
    assert list(rules_source.glob("*.yml"))
    config = yaml.safe_load(config_source.read_text())
    assert all(pattern.startswith("/etc/prometheus/rules/") for pattern in config["rule_files"])
    assert re.fullmatch(r"prom/prometheus:v[23]\.\d+\.\d+", prometheus["image"])


def test_prometheus_scrapes_each_service_on_its_compose_name_and_port(
    services: dict[str, dict[str, Any]],
) -> None:
    """Every scrape target is a compose service listening on the port it is scraped on."""
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = {
        target
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    assert targets == {f"{name}:{SERVICE_PORT}" for name in SERVICES}


def test_grafana_is_provisioned_with_prometheus_and_the_dashboards_folder(
    services: dict[str, dict[str, Any]],
) -> None:
    """Grafana gets the Prometheus datasource (uid prometheus) and loads the dashboards folder."""
    grafana = services["grafana"]
    volumes = mounts(grafana)
    provisioning = ROOT / volumes["/etc/grafana/provisioning"]
    dashboards = ROOT / volumes["/var/lib/grafana/dashboards"]
    assert provisioning.resolve() == ROOT / "deploy" / "grafana" / "provisioning"
    assert dashboards.resolve() == ROOT / "deploy" / "grafana" / "dashboards"
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    url = urlsplit(source["url"])
    assert (source["uid"], source["type"]) == ("prometheus", "prometheus")
    assert url.hostname == "prometheus"
    assert url.port in container_ports(services["prometheus"])
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "dashboards.yml").read_text())[
        "providers"
    ]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    environment = grafana["environment"]
    assert environment["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert environment["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert environment["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:-")


def test_published_ports_are_bound_to_loopback(services: dict[str, dict[str, Any]]) -> None:
    """Nothing is published beyond this machine: every host port is bound to 127.0.0.1."""
    published = [port for service in services.values() for port in service.get("ports", [])]
    assert published
    assert all(str(port).startswith("127.0.0.1:") for port in published)
