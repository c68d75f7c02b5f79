"""Who may do what on the broker: the ACLs of each service's principal, and of a ministry that
writes straight to the events topic; applied through the Kafka protocol (CreateAcls).

The bindings are plain data computed from the topic and group names (unit-tested); `create_acls`
is the thin adapter. Creating an ACL that exists is a no-op on the broker, so applying the same
bindings again (every `stack.py start`, every compose `init`) changes nothing.

Kafka's ACL model: READ and WRITE on a topic imply DESCRIBE (metadata, offsets); a consumer group
needs READ on its group id; since Kafka 2.8 the idempotent producer needs only WRITE on a topic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum

from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.admin import CreateAclsRequest

from shared.kafka import client_options
from shared.settings import KafkaSettings, TopicSettings


class ResourceType(IntEnum):
    TOPIC = 2
    GROUP = 3


class PatternType(IntEnum):
    LITERAL = 3
    PREFIXED = 4


class Operation(IntEnum):
    READ = 3
    WRITE = 4


ALLOW = 3  # AclPermissionType.ALLOW; nothing here denies: no ACL means no access
ANY_HOST = "*"


@dataclass(frozen=True)
class AclBinding:
    user: str
    operation: Operation
    resource_type: ResourceType
    resource_name: str
    pattern: PatternType = PatternType.LITERAL

    @property
    def principal(self) -> str:
        return f"User:{self.user}"

    def __str__(self) -> str:
        pattern = "" if self.pattern is PatternType.LITERAL else f" ({self.pattern.name.lower()})"
        return (
            f"{self.principal} {self.operation.name} "
            f"{self.resource_type.name.lower()} {self.resource_name}{pattern}"
        )


@dataclass(frozen=True)
class ServicePrincipals:
    """The SCRAM user each service authenticates as, and the consumer groups it joins."""

    ingest: str = "ingest"
    kpi: str = "kpi"
    alerts: str = "alerts"
    kpi_group: str = "shinchoku-kpi"
    alerts_group: str = "shinchoku-alerts"
    # `shinchoku replay` (services/kpi/replay.py) reads the events topic in a fresh group each run
    replay_group_prefix: str = "shinchoku-replay-"


def _topic(user: str, operation: Operation, name: str) -> AclBinding:
    return AclBinding(user, operation, ResourceType.TOPIC, name)


def _group(user: str, name: str) -> AclBinding:
    return AclBinding(user, Operation.READ, ResourceType.GROUP, name)


def ingest_bindings(principals: ServicePrincipals, topics: TopicSettings) -> list[AclBinding]:
    return [_topic(principals.ingest, Operation.WRITE, topics.events)]


def kpi_bindings(principals: ServicePrincipals, topics: TopicSettings) -> list[AclBinding]:
    return [
        _topic(principals.kpi, Operation.READ, topics.events),
        _topic(principals.kpi, Operation.WRITE, topics.status),
        _topic(principals.kpi, Operation.WRITE, topics.dead_letter),
        _group(principals.kpi, principals.kpi_group),
        AclBinding(
            principals.kpi,
            Operation.READ,
            ResourceType.GROUP,
            principals.replay_group_prefix,
            PatternType.PREFIXED,
        ),
    ]


def alerts_bindings(principals: ServicePrincipals, topics: TopicSettings) -> list[AclBinding]:
    return [
        _topic(principals.alerts, Operation.READ, topics.status),
        _topic(principals.alerts, Operation.WRITE, topics.dead_letter),
        _group(principals.alerts, principals.alerts_group),
    ]


def service_bindings(principals: ServicePrincipals, topics: TopicSettings) -> list[AclBinding]:
    """Ingest writes events; kpi reads events, writes status and dead letters; alerts reads
    status, writes its dead letters. Nothing else: no service may write another's topic."""
    return [
        *ingest_bindings(principals, topics),
        *kpi_bindings(principals, topics),
        *alerts_bindings(principals, topics),
    ]


MINISTRY_CODE = re.compile(r"[a-z][a-z0-9-]{1,31}")


def ministry_user(code: str) -> str:
    """The SCRAM user of a ministry that writes straight to Kafka: ``ministry-<code>``."""
    if not MINISTRY_CODE.fullmatch(code):
        raise ValueError(f"ministry code {code!r}: lower-case letters, digits and '-', 2-32 long")
    return f"ministry-{code}"


def ministry_bindings(code: str, topics: TopicSettings) -> list[AclBinding]:
    """WRITE on the events topic and nothing else: what it writes is re-validated by kpi (the
    same validation as ingest, ownership included) and dead-lettered with its reason if it fails."""
    return [_topic(ministry_user(code), Operation.WRITE, topics.events)]


class AclError(RuntimeError):
    """The broker refused to create an ACL (e.g. the client is not an admin)."""


async def create_acls(settings: KafkaSettings, bindings: list[AclBinding]) -> None:
    """Create each binding (ALLOW, any host) as the principal in `settings`, a super user."""
    client = AIOKafkaClient(**client_options(settings), client_id=f"{settings.client_id}-acls")
    await client.bootstrap()
    try:
        for binding in bindings:
            request = CreateAclsRequest(
                binding.resource_type,
                binding.resource_name,
                binding.pattern,
                binding.principal,
                ANY_HOST,
                binding.operation,
                ALLOW,
            )
            response = await client.send(client.get_random_node(), request)
            for error_code, message in response.creation_responses:
                if error_code:
                    raise AclError(f"{binding}: error {error_code} {message or ''}".strip())
    finally:
        await client.close()
