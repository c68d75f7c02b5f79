"""Hostile input: webhook targets on internal addresses are refused by the alerts subscription
API (creation and URL change), on the real app (lifespan on the real Kafka and FerretDB).

Two apps: one configured as in production (no allowed networks), and one as the test suite runs
it (127.0.0.1/32 allowed for loopback receivers), to show that allow-list opens exactly that
address. Real names come from the machine's resolver (`localhost`, this host's own name); names
an attacker would register in public DNS (a name answering 169.254.169.254, or one public and
one private address) come from a fixed zone passed as the app's resolver, the composition root's
seam for name resolution; everything else in the zone's resolver is the real one.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest

from services.alerts.adapters.webhook_sender import resolve
from services.alerts.bootstrap import create_app
from services.alerts.settings import AlertsSettings
from shared.http.problems import PROBLEM_BASE, PROBLEM_JSON
from shared.kafka import ensure_topics
from shared.mongo import MongoClient
from shared.settings import KafkaSettings, MongoSettings
from tests.support.stack import isolated_topics, random_suffix

pytestmark = pytest.mark.integration

TOKEN = "hostile-targets-" + secrets.token_hex(6)
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PUBLIC_ADDRESS = "93.184.215.14"  # a public unicast address; nothing connects to it here

# Names an attacker controls in public DNS, and what they answer.
ATTACKER_ZONE: dict[str, list[str]] = {
    "metadata.attacker.test": ["169.254.169.254"],
    "metadata6.attacker.test": ["fd00:ec2::254"],
    "mapped-metadata.attacker.test": ["::ffff:169.254.169.254"],
    "intranet.attacker.test": ["10.20.30.40"],
    "router.attacker.test": ["192.168.1.1"],
    "loopback.attacker.test": ["127.0.0.1"],
    "loopback6.attacker.test": ["::1"],
    "half-public.attacker.test": [PUBLIC_ADDRESS, "172.16.0.9"],
    "hooks.partner.test": [PUBLIC_ADDRESS],
}


async def zone_resolver(host: str, port: int = 443) -> list[str]:
    """The attacker zone's answers for its names; the real resolver for every other name."""
    if host.rstrip(".").lower() in ATTACKER_ZONE:
        return ATTACKER_ZONE[host.rstrip(".").lower()]
    return await resolve(host, port)


def this_hosts_name() -> str:
    """The machine's own host name, which resolves (through /etc/hosts) to an internal
    address on this kind of machine; asserted so the case below is not vacuous."""
    name = socket.gethostname()
    addresses = {str(info[4][0]) for info in socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)}
    assert addresses, name
    assert not any(ipaddress.ip_address(a.split("%")[0]).is_global for a in addresses), addresses
    return name


# (URL, a word the refusal must contain): every way of naming an internal address.
INTERNAL_TARGETS: list[tuple[str, str]] = [
    # Loopback, in every spelling an URL parser accepts.
    ("http://127.0.0.1/hook", "loopback"),
    ("http://127.0.0.1:9092/", "loopback"),  # Kafka's port
    ("http://127.9.9.9/hook", "loopback"),
    ("http://2130706433/hook", "loopback"),  # decimal
    ("http://0x7f000001/hook", "loopback"),  # hexadecimal
    ("http://0177.0.0.1/hook", "loopback"),  # octal
    ("http://127.1/hook", "loopback"),  # short form
    ("http://[::1]/hook", "loopback"),
    ("http://[::ffff:127.0.0.1]/hook", "loopback"),  # IPv4-mapped IPv6
    ("http://localhost/hook", "loopback"),
    ("http://LOCALHOST:8002/v1/kpis", "loopback"),
    ("http://0.0.0.0/hook", "address"),  # reaches the local host on Linux
    ("http://0/hook", "address"),
    ("http://[::]/hook", "address"),
    # Private ranges.
    ("http://10.0.0.1/hook", "private"),
    ("http://10.255.255.254:8443/hook", "private"),
    ("http://172.16.0.1/hook", "private"),
    ("http://172.31.255.1/hook", "private"),
    ("http://192.168.0.1/hook", "private"),
    ("https://192.168.100.200/hook", "private"),
    ("http://[fd12:3456::1]/hook", "private"),
    ("http://[::ffff:10.0.0.1]/hook", "private"),
    ("http://100.64.0.1/hook", "address"),  # carrier-grade NAT
    # Link-local and cloud metadata.
    ("http://169.254.169.254/latest/meta-data/", "metadata"),
    ("http://169.254.169.254:80/computeMetadata/v1/", "metadata"),
    ("http://[fd00:ec2::254]/latest/meta-data/", "metadata"),
    ("http://[::ffff:169.254.169.254]/latest/meta-data/", "metadata"),
    ("http://100.100.100.200/latest/meta-data/", "metadata"),
    ("http://169.254.1.1/hook", "link-local"),
    ("http://[fe80::1]/hook", "link-local"),
    # IPv6 transition addresses carrying an internal IPv4 address.
    ("http://[2002:a9fe:a9fe::1]/hook", "metadata"),  # 6to4 of 169.254.169.254
    ("http://[2002:7f00:1::1]/hook", "loopback"),  # 6to4 of 127.0.0.1
    ("http://[64:ff9b::a9fe:a9fe]/hook", "address"),  # NAT64 of 169.254.169.254
    # URL-parser confusion: the host is the internal one, whatever the decoration.
    ("http://hooks.partner.test@127.0.0.1/hook", "loopback"),
    ("http://hooks.partner.test:443@169.254.169.254/", "metadata"),
    ("http://127.0.0.1\\@hooks.partner.test/hook", "loopback"),
    # DNS names resolving to internal addresses.
    ("http://metadata.attacker.test/latest/meta-data/", "metadata"),
    ("http://metadata6.attacker.test/", "metadata"),
    ("http://mapped-metadata.attacker.test/", "metadata"),
    ("http://intranet.attacker.test/hook", "private"),
    ("http://router.attacker.test/hook", "private"),
    ("http://loopback.attacker.test/hook", "loopback"),
    ("http://loopback6.attacker.test/hook", "loopback"),
    ("http://half-public.attacker.test/hook", "private"),  # every answer must pass
    ("http://METADATA.attacker.test./", "metadata"),  # case and trailing dot
    ("http://no-such-host.invalid/hook", "does not resolve"),
]
# Not URLs the API takes at all (422 before any resolution).
NOT_WEBHOOK_URLS = [
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_INFO",
    "ftp://10.0.0.1/",
    "dict://127.0.0.1:11211/",
    "http://[fe80::1%25eth0]/hook",
    "/relative/hook",
    "",
]


async def wait_ready(client: httpx.AsyncClient, timeout_s: float = 60) -> None:
    """Bounded wait for /readyz (the consumer has joined its group)."""
    async with asyncio.timeout(timeout_s):
        while (await client.get("/readyz")).status_code != 200:  # noqa: ASYNC110 - polling HTTP
            await asyncio.sleep(0.2)


@pytest.fixture(scope="module")
async def apps(
    kafka: KafkaSettings, mongo: MongoClient, mongo_config: MongoSettings
) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """`guarded`: no allowed networks (production); `loopback_allowed`: 127.0.0.1/32 allowed
    (as the suite runs alerts for its local receivers). Own topics and databases."""
    topics = isolated_topics(f"hostile-ssrf-{random_suffix()}", partitions=1)
    async with asyncio.timeout(60):
        await ensure_topics(kafka, topics)
    databases: list[str] = []
    async with AsyncExitStack() as exits:
        clients = {}
        for name, allowed in (("guarded", []), ("loopback_allowed", ["127.0.0.1/32"])):
            database = f"{mongo_config.database}_hostssrf_{name}_{secrets.token_hex(3)}"
            databases.append(database)
            app = create_app(
                AlertsSettings(
                    kafka=kafka,
                    topics=topics,
                    mongo=mongo_config.model_copy(update={"database": database}),
                    admin_token=TOKEN,
                    consumer_group=f"alerts-{database}",
                    allowed_target_networks=allowed,
                    log_json=True,
                ),
                resolver=zone_resolver,
            )
            await exits.enter_async_context(app.router.lifespan_context(app))
            clients[name] = await exits.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://alerts")
            )
            await wait_ready(clients[name])
        yield clients
    for database in databases:
        await mongo.drop_database(database)


async def subscription_ids(client: httpx.AsyncClient) -> list[str]:
    listed = await client.get("/v1/subscriptions", headers=AUTH, params={"limit": 500})
    assert listed.status_code == 200, listed.text
    return [item["id"] for item in listed.json()["items"]]


def assert_refused(answer: httpx.Response, url: str, word: str) -> None:
    """The exact refusal: 422 problem details, code ssrf_refused, the url field and why."""
    assert answer.status_code == 422, (url, answer.status_code, answer.text)
    assert answer.headers["content-type"] == PROBLEM_JSON, url
    problem = answer.json()
    assert problem["type"] == PROBLEM_BASE + "validation-error", (url, problem)
    assert problem["status"] == 422
    assert problem["code"] == "ssrf_refused", (url, problem)
    assert [error["field"] for error in problem["errors"]] == ["url"], (url, problem)
    assert word in problem["detail"], (url, problem["detail"])


async def test_internal_targets_are_refused_at_creation(
    apps: dict[str, httpx.AsyncClient],
) -> None:
    """Every spelling of a loopback, private, link-local, metadata or transition address, and
    every name resolving to one, is refused with the ssrf_refused problem; nothing is stored."""
    client = apps["guarded"]
    before = await subscription_ids(client)
    for url, word in INTERNAL_TARGETS:
        body: dict[str, Any] = {"url": url, "description": "hostile"}
        assert_refused(await client.post("/v1/subscriptions", headers=AUTH, json=body), url, word)
    assert await subscription_ids(client) == before


async def test_this_hosts_own_name_is_refused(apps: dict[str, httpx.AsyncClient]) -> None:
    """The machine's own host name (an internal address through /etc/hosts) is refused."""
    url = f"http://{this_hosts_name()}:8002/hook"
    answer = await apps["guarded"].post("/v1/subscriptions", headers=AUTH, json={"url": url})
    assert_refused(answer, url, "address")


async def test_urls_of_other_schemes_or_shapes_are_invalid(
    apps: dict[str, httpx.AsyncClient],
) -> None:
    """file:, gopher:, ftp:, dict:, zone-scoped, relative and empty URLs are not webhook URLs:
    a 422 validation problem naming the url field, nothing stored."""
    client = apps["guarded"]
    before = await subscription_ids(client)
    for url in NOT_WEBHOOK_URLS:
        answer = await client.post("/v1/subscriptions", headers=AUTH, json={"url": url})
        assert answer.status_code == 422, (url, answer.text)
        assert answer.headers["content-type"] == PROBLEM_JSON
        problem = answer.json()
        assert problem["type"] == PROBLEM_BASE + "validation-error", (url, problem)
        assert [error["field"] for error in problem["errors"]] == ["url"], (url, problem)
    assert await subscription_ids(client) == before


async def test_a_url_change_to_an_internal_target_is_refused_and_changes_nothing(
    apps: dict[str, httpx.AsyncClient],
) -> None:
    """A subscription to a public target cannot be moved inward by PATCH: each internal URL is
    refused and the stored URL stays the public one."""
    client = apps["guarded"]
    public = f"http://{PUBLIC_ADDRESS}/hook"
    created = await client.post("/v1/subscriptions", headers=AUTH, json={"url": public})
    assert created.status_code == 201, created.text
    sub = created.json()["id"]
    for url, word in INTERNAL_TARGETS[::4]:
        answer = await client.patch(f"/v1/subscriptions/{sub}", headers=AUTH, json={"url": url})
        assert_refused(answer, url, word)
    stored = await client.get(f"/v1/subscriptions/{sub}", headers=AUTH)
    assert stored.json()["url"] == public
    assert (await client.delete(f"/v1/subscriptions/{sub}", headers=AUTH)).status_code == 204


async def test_public_targets_are_accepted(apps: dict[str, httpx.AsyncClient]) -> None:
    """The guard is not a blanket refusal: a public address, and a name resolving only to
    public addresses, are accepted."""
    client = apps["guarded"]
    for url in (f"https://{PUBLIC_ADDRESS}/hook", "https://hooks.partner.test/shinchoku"):
        created = await client.post("/v1/subscriptions", headers=AUTH, json={"url": url})
        assert created.status_code == 201, (url, created.text)
        assert created.json()["url"] == url
        sub = created.json()["id"]
        assert (await client.delete(f"/v1/subscriptions/{sub}", headers=AUTH)).status_code == 204


async def test_the_loopback_allow_list_opens_exactly_127_0_0_1(
    apps: dict[str, httpx.AsyncClient],
) -> None:
    """With 127.0.0.1/32 allowed (the suite's setting for local receivers), 127.0.0.1 and
    names resolving only to it are accepted; every other internal target is still refused."""
    client = apps["loopback_allowed"]
    for url in ("http://127.0.0.1:8765/hook", "http://localhost:8765/hook"):
        created = await client.post("/v1/subscriptions", headers=AUTH, json={"url": url})
        assert created.status_code == 201, (url, created.text)
        sub = created.json()["id"]
        assert (await client.delete(f"/v1/subscriptions/{sub}", headers=AUTH)).status_code == 204
    still_refused = [
        (url, word)
        for url, word in INTERNAL_TARGETS
        if "127.0.0.1" not in url
        and "2130706433" not in url
        and "0x7f000001" not in url
        and "0177.0.0.1" not in url
        and "127.1/" not in url
        and "localhost" not in url.lower()
        and "loopback.attacker" not in url
        and "\\@" not in url
    ]
    assert len(still_refused) >= 30
    for url, word in still_refused:
        answer = await client.post("/v1/subscriptions", headers=AUTH, json={"url": url})
        assert_refused(answer, url, word)
