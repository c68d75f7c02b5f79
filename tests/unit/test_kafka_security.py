"""Kafka security as data: which ACL each principal gets, and what a client sends the broker."""

from __future__ import annotations

import ssl

import pytest
from pydantic import SecretStr

from shared.cli import build_parser
from shared.kafka import client_options
from shared.kafka_acls import (
    AclBinding,
    Operation,
    PatternType,
    ResourceType,
    ServicePrincipals,
    ministry_bindings,
    ministry_user,
    service_bindings,
)
from shared.settings import KafkaSettings, TopicSettings

TOPICS = TopicSettings()
PRINCIPALS = ServicePrincipals()
BINDINGS = service_bindings(PRINCIPALS, TOPICS)


def allowed(user: str, operation: Operation, kind: ResourceType, name: str) -> bool:
    return AclBinding(user, operation, kind, name) in BINDINGS


def test_only_ingest_writes_the_events_topic() -> None:
    writers = {
        b.user
        for b in BINDINGS
        if b.operation is Operation.WRITE and b.resource_name == TOPICS.events
    }
    assert writers == {"ingest"}


def test_each_service_reads_what_it_consumes_and_nothing_else() -> None:
    reads = {
        (b.user, b.resource_name)
        for b in BINDINGS
        if b.operation is Operation.READ and b.resource_type is ResourceType.TOPIC
    }
    assert reads == {("kpi", TOPICS.events), ("alerts", TOPICS.status)}


def test_kpi_writes_status_and_dead_letters_alerts_only_its_dead_letters() -> None:
    writes = {
        (b.user, b.resource_name)
        for b in BINDINGS
        if b.operation is Operation.WRITE and b.resource_type is ResourceType.TOPIC
    }
    assert writes == {
        ("ingest", TOPICS.events),
        ("kpi", TOPICS.status),
        ("kpi", TOPICS.dead_letter),
        ("alerts", TOPICS.dead_letter),
    }


def test_consumers_read_their_own_group_only() -> None:
    assert allowed("kpi", Operation.READ, ResourceType.GROUP, "shinchoku-kpi")
    assert allowed("alerts", Operation.READ, ResourceType.GROUP, "shinchoku-alerts")
    assert allowed("kpi", Operation.READ, ResourceType.GROUP, "shinchoku-alerts") is False
    groups = [b for b in BINDINGS if b.resource_type is ResourceType.GROUP]
    assert len(groups) == 3
    # the one prefixed ACL: the replay's fresh group per run, for kpi's principal only
    (prefixed,) = [b for b in BINDINGS if b.pattern is not PatternType.LITERAL]
    assert prefixed == AclBinding(
        "kpi", Operation.READ, ResourceType.GROUP, "shinchoku-replay-", PatternType.PREFIXED
    )
    assert str(prefixed) == "User:kpi READ group shinchoku-replay- (prefixed)"


def test_the_bindings_follow_the_configured_names() -> None:
    topics = TopicSettings(events="e", status="s", dead_letter="d")
    principals = ServicePrincipals(ingest="i", kpi="k", alerts="a", kpi_group="g1")
    bindings = service_bindings(principals, topics)
    assert AclBinding("i", Operation.WRITE, ResourceType.TOPIC, "e") in bindings
    assert AclBinding("k", Operation.READ, ResourceType.GROUP, "g1") in bindings
    assert {b.resource_name for b in bindings} == {
        "e",
        "s",
        "d",
        "g1",
        "shinchoku-alerts",
        "shinchoku-replay-",
    }


def test_a_ministry_grant_is_write_on_events_only() -> None:
    assert ministry_bindings("mic", TOPICS) == [
        AclBinding("ministry-mic", Operation.WRITE, ResourceType.TOPIC, TOPICS.events)
    ]
    assert str(ministry_bindings("mic", TOPICS)[0]) == (
        f"User:ministry-mic WRITE topic {TOPICS.events}"
    )


@pytest.mark.parametrize("code", ["", "m", "MIC", "mic;User:admin", "1mic", "m" * 33, "mic "])
def test_a_ministry_code_is_checked(code: str) -> None:
    with pytest.raises(ValueError, match="ministry code"):
        ministry_user(code)


def test_plaintext_sends_no_credentials() -> None:
    assert client_options(KafkaSettings(bootstrap_servers="k:9092")) == {
        "bootstrap_servers": "k:9092",
        "security_protocol": "PLAINTEXT",
    }


def test_sasl_sends_the_principal() -> None:
    settings = KafkaSettings(
        security_protocol="SASL_PLAINTEXT", username="kpi", password=SecretStr("pw")
    )
    options = client_options(settings)
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("kpi", "pw")
    assert "ssl_context" not in options


def test_sasl_ssl_verifies_the_broker() -> None:
    settings = KafkaSettings(security_protocol="SASL_SSL", username="kpi", password=SecretStr("p"))
    context = client_options(settings)["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED


def test_sasl_without_credentials_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="needs a username and password"):
        client_options(KafkaSettings(security_protocol="SASL_PLAINTEXT", username="kpi"))


def test_the_password_is_never_shown() -> None:
    settings = KafkaSettings(
        security_protocol="SASL_PLAINTEXT", username="kpi", password=SecretStr("hunter2")
    )
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings.model_dump())


def test_the_cli_has_the_kafka_commands() -> None:
    parser = build_parser("kafka")
    assert parser.parse_args(["kafka", "grant-ministry", "mic"]).code == "mic"
    args = parser.parse_args(["kafka", "acls", "--kpi-group", "g"])
    assert args.kpi_group == "g"


def test_the_acl_groups_are_the_services_default_consumer_groups() -> None:
    """`shinchoku kafka acls` grants READ on the groups the services join by default."""
    from services.alerts.settings import AlertsSettings
    from services.kpi.settings import KpiSettings

    assert PRINCIPALS.kpi_group == KpiSettings.model_fields["consumer_group"].default
    assert PRINCIPALS.alerts_group == AlertsSettings.model_fields["consumer_group"].default


def test_the_replay_joins_a_group_under_the_granted_prefix() -> None:
    """services/kpi/replay.py names its fresh group under the prefix kpi is granted."""
    from pathlib import Path

    import services.kpi.replay as replay

    source = Path(replay.__file__).read_text()
    assert f'group_id=f"{PRINCIPALS.replay_group_prefix}{{' in source
