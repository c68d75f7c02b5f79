"""The services' metric definitions follow Prometheus conventions (`promtool check metrics` runs
in the integration tier: tests/integration/test_prometheus_rules.py)."""

from __future__ import annotations

import ast
import re

import pytest
from prometheus_client import generate_latest

from services.alerts.metrics import ATTEMPT_RESULTS
from services.ingest.metrics import AUTH_FAILURE_REASONS
from services.ingest.service.authentication import AuthFailure
from shared.consumer import HANDLER_FAILED
from shared.metrics import DEAD_LETTER_REASONS
from tests.support.promql import (
    ROOT,
    SERVICE_REGISTRIES,
    family_names,
    populated,
    service_registry,
)

# Concepts several services measure: one metric each, told apart by a `service` label.
SHARED_PREFIXES = ("shinchoku_http_", "shinchoku_consumer_")

UNITS = ("_seconds", "_records", "_events", "_total", "_bytes")
# Labels that would carry unbounded values (ids, free text).
UNBOUNDED = re.compile(r"(^|_)(id|ids|subject|url|key|source|detail|error|message)$")


@pytest.mark.parametrize("service", sorted(SERVICE_REGISTRIES))
def test_names_are_shinchoku_service_noun_unit_with_bounded_labels(service: str) -> None:
    """Every metric is `shinchoku_<service>_...` or a shared `shinchoku_<noun>_...`,
    histograms end in a unit, no label could carry an id, and no `_created` series doubles
    the counters."""
    families = family_names(service)
    assert families
    # A metric several services measure is one name with a `service` label (the convention).
    labelled_by_service = {
        name
        for collector, names in service_registry(service)._collector_to_names.items()
        if "service" in getattr(collector, "_labelnames", ())
        for name in names
    }
    for name, kind in families.items():
        shared = name.startswith(SHARED_PREFIXES) and name in labelled_by_service
        assert name.startswith(f"shinchoku_{service}_") or shared, name
        if kind == "histogram":
            assert name.endswith(UNITS), name
        if kind == "gauge":
            assert not name.endswith("_total"), name
    for collector in service_registry(service)._collector_to_names:
        for label in getattr(collector, "_labelnames", ()):
            assert not UNBOUNDED.search(label), (collector, label)
    exposition = generate_latest(populated(service)).decode()
    assert "_created" not in exposition


def test_a_concept_several_services_measure_is_one_metric_with_a_service_label() -> None:
    """No two services name the same concept apart (`shinchoku_kpi_consumer_lag_records` beside
    `shinchoku_alerts_consumer_lag_records`): a concept is one metric, and each service's
    series of a shared metric carry `service="<that service>"`."""
    concepts: dict[str, set[str]] = {}
    for service in SERVICE_REGISTRIES:
        for name in family_names(service):
            concepts.setdefault(name.removeprefix(f"shinchoku_{service}_"), set()).add(service)
    repeated = {noun: owners for noun, owners in concepts.items() if len(owners) > 1}
    assert not {n for n in repeated if not n.startswith(SHARED_PREFIXES)}, repeated
    assert any(n.startswith("shinchoku_consumer_lag_records") for n in repeated)
    for service in SERVICE_REGISTRIES:
        registry = populated(service)
        for family in registry.collect():
            if family.name.startswith(SHARED_PREFIXES):
                assert family.samples, family.name
                for sample in family.samples:
                    assert sample.labels.get("service") in {service, "x"}, sample


def test_the_known_label_values_start_at_zero() -> None:
    """Dead-letter reasons, ingest auth failures and webhook results are exported at 0 before
    the first occurrence, so rate() and increase() see it and dashboards show 0."""
    kpi = generate_latest(service_registry("kpi")).decode()
    for reason in DEAD_LETTER_REASONS:
        assert (
            f'shinchoku_consumer_dead_letters_total{{reason="{reason}",service="kpi"}} 0.0' in kpi
        )
    ingest = generate_latest(service_registry("ingest")).decode()
    for reason in AUTH_FAILURE_REASONS:
        assert f'shinchoku_ingest_auth_failures_total{{reason="{reason}"}} 0.0' in ingest
    alerts = generate_latest(service_registry("alerts")).decode()
    for result in ATTEMPT_RESULTS:
        assert f'shinchoku_alerts_delivery_attempts_total{{result="{result}"}} 0.0' in alerts


def _string_arguments(path: str, call: str) -> set[str]:
    tree = ast.parse((ROOT / path).read_text())
    return {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", getattr(node.func, "attr", None)) == call
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    }


def test_the_pre_initialised_values_are_the_ones_the_code_produces() -> None:
    """The zero-started label values match what the code can emit: every reason the Kafka
    binding raises plus the runner's no_handler and handler_failed, every AuthFailure, every
    send result."""
    binding = _string_arguments("shared/events/kafka_binding.py", "UndecodableRecord")
    assert binding | {"no_handler", HANDLER_FAILED} == set(DEAD_LETTER_REASONS)
    assert {failure.value for failure in AuthFailure} == set(AUTH_FAILURE_REASONS)
    sender = _string_arguments("services/alerts/adapters/webhook_sender.py", "failed")
    assert sender | {"success", "http_error"} == set(ATTEMPT_RESULTS)
