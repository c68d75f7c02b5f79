"""`shinchoku simulate`: the demo feed. Months of ministry reporting, in minutes, through the
ingest API.

The scenario (demo/scenario.py) covers the last `--days` days. Time is compressed by the same
catch-up clock the kpi service runs on in the demo (shared.clock.offset_clock): from
`--clock-start` the simulated date runs `--speed` days per second from `--days` ago until it
meets today, then keeps to real time. Each report is posted when the simulated date reaches its
as_of, so the kpi service, reading the same clock, evaluates it on that day: slips, deadlines
passing and reports going stale happen in the order they would.

The kpi service must run on that clock for statuses to move with the feed: `make demo` starts it
with ``SHINCHOKU_KPI_CLOCK_OFFSET_DAYS=-days``, ``SHINCHOKU_KPI_CLOCK_RATE=speed x 86400`` and
``SHINCHOKU_KPI_CLOCK_START``, and this command reads its defaults from the same variables.
Against a kpi service on real time the feed replays the window at once: early reports look stale
until later ones arrive, and the final statuses are the same.

Each ministry posts its reports as one batch per tick with its own API key (created through the
ingest admin API with ``SHINCHOKU_ADMIN_TOKEN``), at most `--rate` events per second. Every
`--malformed-every` simulated days one malformed event goes out alone; the answer must be an RFC
9457 problem of the expected type. Exit status 0 when every valid event was accepted and every
malformed one refused as expected.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from demo.scenario import Course, Report, Scenario, SubjectPlan, build_scenario

DAY_S = 86_400.0
DEFAULT_DAYS = 365
DEFAULT_SPEED = 3.0
DEFAULT_RATE = 200.0
DEFAULT_MALFORMED_EVERY = 30
TICK_S = 0.25
MAX_BATCH = 200
STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
PROBLEM_JSON = "application/problem+json"
# Malformed events, by the problem type ingest must answer with; sent in this order, cycling.
MALFORMED_KINDS = (
    "not-in-catalogue",
    "impossible-value",
    "wrong-ministry",
    "malformed-request",
    "invalid-event",
    "as-of-in-future",
    "inconsistent-event",
)


@dataclass(frozen=True)
class FeedClock:
    """The simulated clock: `days` behind real time at `start`, `speed` days per real second,
    never ahead of real time (shared.clock.offset_clock with a negative offset)."""

    start: datetime
    days: int
    speed: float

    @property
    def rate(self) -> float:
        return self.speed * DAY_S

    @property
    def first_day(self) -> date:
        return (self.start - timedelta(days=self.days)).date()

    @property
    def last_day(self) -> date:
        return self.first_day + timedelta(days=self.days)

    def now(self) -> datetime:
        """The simulated time: the kpi service's own clock function, with the same settings."""
        from shared.clock import offset_clock

        return offset_clock(-self.days, rate=self.rate, start=self.start)()

    def kpi_environment(self) -> dict[str, str]:
        """The kpi service's settings for this clock."""
        return {
            "SHINCHOKU_KPI_CLOCK_OFFSET_DAYS": str(-self.days),
            "SHINCHOKU_KPI_CLOCK_RATE": repr(self.rate),
            "SHINCHOKU_KPI_CLOCK_START": self.start.isoformat(),
        }

    @classmethod
    def from_environment(
        cls,
        environ: Mapping[str, str],
        *,
        days: int | None = None,
        speed: float | None = None,
        start: datetime | None = None,
    ) -> FeedClock:
        """Explicit values, else the kpi service's clock settings, else the defaults."""
        offset = float(environ.get("SHINCHOKU_KPI_CLOCK_OFFSET_DAYS") or 0)
        rate = float(environ.get("SHINCHOKU_KPI_CLOCK_RATE") or 0)
        started = environ.get("SHINCHOKU_KPI_CLOCK_START")
        return cls(
            start=start
            or (datetime.fromisoformat(started) if started else None)
            or datetime.now(UTC),
            days=days or (round(-offset) if offset < 0 else DEFAULT_DAYS),
            speed=speed or (rate / DAY_S if rate > 1 else DEFAULT_SPEED),
        )


def demo_scenario(clock: FeedClock, *, silent_ministry: str | None = None) -> Scenario:
    """The scenario for the built-in catalogue over the clock's window."""
    from shared.catalogue.loader import catalogue_documents, validated_catalogue

    catalogue = validated_catalogue(check_sources=False)
    documents = catalogue_documents(catalogue)
    return build_scenario(
        documents.items,
        documents.measures,
        start=clock.first_day,
        end=clock.last_day,
        plan_start=catalogue.plan.decided_on,
        default_owner=catalogue.default_owner,
        silent_ministry=silent_ministry,
    )


# ---------------------------------------------------------------------------------------------
# Events


def cloudevent(report: Report, event_id: str, sent_at: datetime) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": f"/ministries/{report.ministry}",
        "type": report.event_type,
        "subject": report.subject_id,
        "time": sent_at.isoformat(),
        "datacontenttype": "application/json",
        "data": dict(report.data),
    }


@dataclass(frozen=True)
class MalformedEvent:
    kind: str  # the problem type expected
    ministry: str  # whose key posts it
    body: bytes


def malformed_event(
    kind: str, scenario: Scenario, day: date, event_id: str, sent_at: datetime
) -> MalformedEvent:
    """A report of an on-course percentage KPI, broken the way `kind` names."""
    subject = _percent_kpi(scenario)
    report = Report(
        subject.id,
        "kpi",
        subject.ministry,
        day,
        day,
        {"kpi_id": subject.id, "value": 50.0, "as_of": day.isoformat(), "note": "demo: malformed"},
    )
    event = cloudevent(report, event_id, sent_at)
    ministry = subject.ministry
    if kind == "not-in-catalogue":
        event["subject"] = event["data"]["kpi_id"] = "kpi.not-in-the-plan"
    elif kind == "impossible-value":
        event["data"]["value"] = 130.0
    elif kind == "wrong-ministry":
        ministry = next(m for m in _reporters(scenario) if m not in subject.ministries)
        event["source"] = f"/ministries/{ministry}"
    elif kind == "malformed-request":
        return MalformedEvent(kind, ministry, json.dumps(event).encode()[:40])
    elif kind == "invalid-event":
        del event["data"]["value"]
    elif kind == "as-of-in-future":
        event["data"]["as_of"] = (sent_at.date() + timedelta(days=30)).isoformat()
    elif kind == "inconsistent-event":
        event["subject"] = next(s for s in scenario.subjects if s != subject.id)
    else:
        raise ValueError(f"unknown malformed kind {kind!r}")
    return MalformedEvent(kind, ministry, json.dumps(event).encode())


def _percent_kpi(scenario: Scenario) -> SubjectPlan:
    return next(
        plan
        for plan in scenario.subjects.values()
        if plan.kind == "kpi" and plan.unit in ("%", "％") and plan.course is Course.ON_COURSE
    )


def _reporters(scenario: Scenario) -> list[str]:
    return sorted({report.ministry for report in scenario.timeline})


# ---------------------------------------------------------------------------------------------
# The feed


@dataclass(frozen=True)
class MalformedResult:
    kind: str
    status: int
    content_type: str
    problem_type: str

    @property
    def as_expected(self) -> bool:
        return (
            400 <= self.status < 500
            and self.content_type.startswith(PROBLEM_JSON)
            and self.problem_type.rsplit("/", 1)[-1] == self.kind
        )


@dataclass
class FeedSummary:
    accepted: int = 0
    duplicates: int = 0
    # Valid events ingest did not accept (none expected), as "subject: problem" lines.
    refused: list[str] = field(default_factory=list)
    malformed: list[MalformedResult] = field(default_factory=list)
    by_ministry: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return not self.refused and all(m.as_expected for m in self.malformed)


class _Pace:
    """At most `rate` events per second, spread evenly."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.next_free = time.monotonic()

    async def take(self, events: int) -> None:
        now = time.monotonic()
        begin = max(now, self.next_free)
        self.next_free = begin + events / self.rate
        if begin > now:
            await asyncio.sleep(begin - now)


async def ministry_keys(
    http: httpx.AsyncClient, ingest_url: str, admin_token: str, ministries: Iterable[str]
) -> dict[str, str]:
    """A fresh ingest API key per ministry, through the admin API."""
    keys: dict[str, str] = {}
    for ministry in sorted(set(ministries)):
        answer = await http.post(
            f"{ingest_url}/v1/admin/keys",
            json={"ministry": ministry, "label": "shinchoku demo feed"},
            headers={"authorization": f"Bearer {admin_token}"},
        )
        if answer.status_code != 201:
            raise RuntimeError(
                f"ingest refused an API key for {ministry} ({answer.status_code}): {answer.text}"
            )
        keys[ministry] = str(answer.json()["key"])
    return keys


def _retry_after(answer: httpx.Response) -> float:
    try:
        return max(float(answer.headers.get("retry-after", "1")), 0.1)
    except ValueError:
        return 1.0


@dataclass
class Feed:
    scenario: Scenario
    clock: FeedClock
    http: httpx.AsyncClient
    ingest_url: str
    keys: Mapping[str, str]
    rate: float = DEFAULT_RATE
    malformed_every: int = DEFAULT_MALFORMED_EVERY
    out: Callable[[str], None] = field(default=lambda line: print(line, flush=True))
    summary: FeedSummary = field(default_factory=FeedSummary)
    run: str = field(default_factory=lambda: secrets.token_hex(3))
    _sequence: int = 0
    _pace: _Pace = field(init=False)

    def __post_init__(self) -> None:
        self._pace = _Pace(self.rate)

    def _next_id(self) -> str:
        self._sequence += 1
        return f"demo-{self.run}-{self._sequence:06d}"

    async def _post_batch(self, ministry: str, events: list[dict[str, Any]]) -> None:
        """Post until every event is accepted or refused; retries what ingest could not take."""
        headers = {"content-type": BATCH, "authorization": f"Bearer {self.keys[ministry]}"}
        pending = events
        for _ in range(20):
            await self._pace.take(len(pending))
            try:
                answer = await self.http.post(
                    f"{self.ingest_url}/v1/events:batch",
                    content=json.dumps(pending),
                    headers=headers,
                )
            except httpx.TransportError as error:
                self.out(f"[feed] ingest unreachable ({error!r}); retrying")
                await asyncio.sleep(1.0)
                continue
            if answer.status_code in (429, 503) and "results" not in answer.text:
                await asyncio.sleep(_retry_after(answer))
                continue
            if answer.status_code not in (200, 503):
                self.summary.refused += [
                    f"{e['subject']}: {answer.status_code} {answer.text[:200]}" for e in pending
                ]
                return
            retry = []
            for result in answer.json()["results"]:
                event = pending[result["index"]]
                outcome = result.get("outcome")
                if outcome == "accepted":
                    self.summary.accepted += 1
                    self.summary.by_ministry[ministry] += 1
                elif outcome == "duplicate":
                    self.summary.duplicates += 1
                elif outcome in ("in_flight", "unavailable"):
                    retry.append(event)
                else:
                    problem = result.get("problem") or {}
                    self.summary.refused.append(
                        f"{event['subject']}: {problem.get('title')}: {problem.get('detail')}"
                    )
            if not retry:
                return
            pending = retry
            await asyncio.sleep(_retry_after(answer) if answer.status_code == 503 else 0.5)
        self.summary.refused += [f"{e['subject']}: gave up after retries" for e in pending]

    async def send(self, reports: list[Report]) -> None:
        """One batch (or a few) per ministry, the ministries in parallel."""
        sent_at = datetime.now(UTC)
        by_ministry: dict[str, list[dict[str, Any]]] = {}
        for report in reports:
            event = cloudevent(report, self._next_id(), sent_at)
            by_ministry.setdefault(report.ministry, []).append(event)

        async def post_all(ministry: str, events: list[dict[str, Any]]) -> None:
            for begin in range(0, len(events), MAX_BATCH):
                await self._post_batch(ministry, events[begin : begin + MAX_BATCH])

        await asyncio.gather(*(post_all(m, e) for m, e in by_ministry.items()))

    async def send_malformed(self, kind: str, day: date) -> MalformedResult:
        event = malformed_event(kind, self.scenario, day, self._next_id(), datetime.now(UTC))
        answer = await self.http.post(
            f"{self.ingest_url}/v1/events",
            content=event.body,
            headers={
                "content-type": STRUCTURED,
                "authorization": f"Bearer {self.keys[event.ministry]}",
            },
        )
        content_type = answer.headers.get("content-type", "")
        problem_type = ""
        if content_type.startswith(PROBLEM_JSON):
            problem_type = str(answer.json().get("type", ""))
        result = MalformedResult(kind, answer.status_code, content_type, problem_type)
        self.summary.malformed.append(result)
        verdict = "refused as expected" if result.as_expected else "NOT refused as expected"
        self.out(
            f"[feed] {day}  malformed event ({kind}): {answer.status_code} "
            f"{problem_type or content_type}, {verdict}"
        )
        return result

    def _narrate(self, after: date | None, upto: date) -> None:
        """What the scenario does in (after, upto]: who starts slipping, who falls silent."""

        def within(day: date | None) -> bool:
            return day is not None and (after is None or after < day) and day <= upto

        for plan in self.scenario.with_course(Course.SLIPPING):
            if within(plan.slips_on):
                self.out(f"[feed] {plan.slips_on}  {plan.id} ({plan.ministry}) starts slipping")
        if within(self.scenario.silent_from):
            self.out(
                f"[feed] {self.scenario.silent_from}  {self.scenario.silent_ministry} "
                "stops reporting"
            )

    async def run_to_end(self) -> FeedSummary:
        """Post the scenario as the simulated date reaches each report; returns at its end."""
        scenario = self.scenario
        sent_until: date | None = None
        kinds = itertools.cycle(MALFORMED_KINDS)
        next_malformed = scenario.start + timedelta(days=self.malformed_every)
        month: tuple[int, int] | None = None
        accepted_at_month = 0
        waiting = False
        while sent_until is None or sent_until < scenario.end:
            today = min(self.clock.now().date(), scenario.end)
            if today < scenario.start:
                if not waiting:
                    waiting = True
                    self.out(
                        f"[feed] waiting for the simulated clock (it starts at {self.clock.start})"
                    )
                await asyncio.sleep(TICK_S)
                continue
            self._narrate(sent_until, today)
            await self.send(scenario.due(sent_until, today))
            while self.malformed_every > 0 and next_malformed <= today:
                await self.send_malformed(next(kinds), next_malformed)
                next_malformed += timedelta(days=self.malformed_every)
            if month is not None and (today.year, today.month) != month:
                accepted = self.summary.accepted - accepted_at_month
                self.out(
                    f"[feed] {month[0]}-{month[1]:02d}  {accepted} reports accepted "
                    f"({self.summary.accepted} so far)"
                )
                accepted_at_month = self.summary.accepted
            month = (today.year, today.month)
            sent_until = today
            if today < scenario.end:
                await asyncio.sleep(TICK_S)
        return self.summary


async def run_feed(
    scenario: Scenario,
    clock: FeedClock,
    *,
    ingest_url: str,
    admin_token: str,
    rate: float = DEFAULT_RATE,
    malformed_every: int = DEFAULT_MALFORMED_EVERY,
    out: Callable[[str], None] = lambda line: print(line, flush=True),
) -> FeedSummary:
    """Create the ministries' keys, then post the whole scenario (see the module docstring)."""
    ingest_url = ingest_url.rstrip("/")
    async with httpx.AsyncClient(timeout=60) as http:
        keys = await ministry_keys(http, ingest_url, admin_token, _reporters(scenario))
        out(f"[feed] {scenario.summary()}")
        out(
            f"[feed] {clock.days} simulated days at {clock.speed:g} days/s "
            f"(about {clock.days / clock.speed:.0f} s), at most {rate:g} events/s"
        )
        feed = Feed(
            scenario,
            clock,
            http,
            ingest_url,
            keys,
            rate=rate,
            malformed_every=malformed_every,
            out=out,
        )
        summary = await feed.run_to_end()
    out(
        f"[feed] done: {summary.accepted} reports accepted, {summary.duplicates} duplicates, "
        f"{len(summary.refused)} refused, {len(summary.malformed)} malformed events "
        f"({sum(m.as_expected for m in summary.malformed)} refused as expected)"
    )
    for line in summary.refused[:20]:
        out(f"[feed] refused: {line}")
    return summary


# ---------------------------------------------------------------------------------------------
# Command line


def register(groups: Any) -> None:
    parser = groups.add_parser(
        "simulate",
        help="post the demo feed (months of reporting, time compressed) through ingest",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument(
        "--ingest-url",
        default=os.environ.get("SHINCHOKU_DEMO_INGEST_URL", "http://127.0.0.1:8001"),
    )
    parser.add_argument("--days", type=int, default=None, help=f"window (default {DEFAULT_DAYS})")
    parser.add_argument(
        "--speed",
        type=float,
        default=None,
        help=f"simulated days per second (default {DEFAULT_SPEED:g})",
    )
    parser.add_argument(
        "--clock-start",
        type=_instant,
        default=None,
        help="real instant the simulated clock started (default: SHINCHOKU_KPI_CLOCK_START, now)",
    )
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE, help="max events per second")
    parser.add_argument(
        "--malformed-every",
        type=int,
        default=DEFAULT_MALFORMED_EVERY,
        help="simulated days between malformed events (0: none)",
    )
    parser.add_argument(
        "--silent-ministry", default=None, help="the ministry that goes silent (default: chosen)"
    )
    parser.set_defaults(handler=_main)


def _instant(text: str) -> datetime:
    """An ISO 8601 instant; UTC when it names no offset."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _main(args: argparse.Namespace) -> int:
    token = os.environ.get("SHINCHOKU_ADMIN_TOKEN")
    if not token:
        print("SHINCHOKU_ADMIN_TOKEN must be set (the feed creates ministry API keys)")
        return 2
    clock = FeedClock.from_environment(
        os.environ, days=args.days, speed=args.speed, start=args.clock_start
    )
    scenario = demo_scenario(clock, silent_ministry=args.silent_ministry)
    try:
        summary = asyncio.run(
            run_feed(
                scenario,
                clock,
                ingest_url=args.ingest_url,
                admin_token=token,
                rate=args.rate,
                malformed_every=args.malformed_every,
            )
        )
    except KeyboardInterrupt:
        print("[feed] interrupted")
        return 130
    return 0 if summary.ok else 1
