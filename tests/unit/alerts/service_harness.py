"""The alerts handler graph built from the composition root on the in-memory adapters, with a
clock the test moves, a webhook sender that records what it is given and answers as told,
and a resolver that needs no DNS."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry

from services.alerts.adapters.memory import memory_stores
from services.alerts.composition import AlertsGraph, build_alerts
from services.alerts.domain.notifications import SubscriptionFilter
from services.alerts.metrics import AlertsMetrics
from services.alerts.ports import SendResult
from services.alerts.settings import AlertsSettings
from shared.events.contracts import KpiStatusChangedEvent, Status, new_status_event
from tests.unit.alerts.factories import change

PUBLIC = "93.184.216.34"


async def resolver(host: str, port: int) -> list[str]:
    """`*.internal` resolves to a private address, anything else to a public one."""
    return ["10.0.0.7"] if host.endswith(".internal") else [PUBLIC]


@dataclass
class MovingClock:
    """Real time when the test starts (signatures are checked against it), then moved by
    hand only."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass(frozen=True)
class Sent:
    url: str
    body: bytes
    headers: dict[str, str]

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data


@dataclass
class RecordingSender:
    """The webhook sender port: records each POST, answers from `answers` (then 204)."""

    deadline_s: float = 5.0
    sent: list[Sent] = field(default_factory=list)
    answers: list[SendResult] = field(default_factory=list)

    async def send(
        self, url: str, body: bytes, headers: dict[str, str], *, deadline_s: float | None = None
    ) -> SendResult:
        self.sent.append(Sent(url, body, headers))
        if self.answers:
            return self.answers.pop(0)
        return SendResult(204, 0.01, None, None, "success")


def http_error(status: int, retry_after_s: float | None = None) -> SendResult:
    return SendResult(status, 0.01, f"HTTP {status}", retry_after_s, "http_error")


@dataclass
class Alerts:
    graph: AlertsGraph
    clock: MovingClock
    sender: RecordingSender
    registry: CollectorRegistry
    sequence: dict[str, int] = field(default_factory=dict)

    async def subscribe(self, url: str = "https://hooks.example/a", **flt: Any) -> tuple[str, str]:
        doc, secret = await self.graph.subscriptions.create_subscription(
            url=url, filter_=SubscriptionFilter(**flt), description=None
        )
        return doc.id, secret

    async def change(
        self, kpi_id: str, previous: Status | None, status: Status, *, episode: str = "ep1"
    ) -> KpiStatusChangedEvent:
        """Hand one status change to the handler, as the consumer runner would."""
        n = self.sequence[kpi_id] = self.sequence.get(kpi_id, 0) + 1
        data = change(
            kpi_id=kpi_id, previous=previous, status=status, episode_id=f"{kpi_id}:{episode}"
        )
        event = new_status_event(data, event_id=f"status:{kpi_id}:{n}", time=self.clock())
        await self.graph.status_changes([event])
        return event

    async def deliver(self) -> int:
        """One batcher round, then send everything due now."""
        await self.graph.batcher.tick()
        return await self.graph.worker.drain()

    def metric(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    def types_sent(self) -> list[str]:
        return [str(s.payload()["type"]) for s in self.sender.sent]


def settings(**overrides: Any) -> AlertsSettings:
    values: dict[str, Any] = {
        "public_api_url": "http://kpi.test",
        "grouping_window_s": 0,
        "retry_schedule_s": [0, 5, 60],
        "retry_jitter": 0,
        "delivery_timeout_s": 5,
        "lease_margin_s": 5,
        **overrides,
    }
    return AlertsSettings.model_validate(values)


@asynccontextmanager
async def alerts(answers: Iterable[SendResult] = (), **overrides: Any) -> AsyncIterator[Alerts]:
    """The graph on fresh in-memory stores (the cache never lags: ttl 0)."""
    clock, sender, registry = (
        MovingClock(),
        RecordingSender(answers=list(answers)),
        CollectorRegistry(),
    )
    graph = build_alerts(
        settings(**overrides),
        clock=clock,
        stores=memory_stores(cache_ttl_s=0),
        sender=sender,
        resolver=resolver,
        metrics=AlertsMetrics.create(registry),
    )
    yield Alerts(graph, clock, sender, registry)
