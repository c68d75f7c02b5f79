"""Which webhook targets are refused: loopback, private, link-local, metadata, reserved ranges.

Checked when a subscription is created or its URL changed, and again at every delivery (the
sender connects only to an address it has just checked, so a DNS answer that changes after the
check, DNS rebinding, cannot redirect a delivery inward).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable, Sequence

# How a host name becomes addresses (the real resolver is in adapters/webhook_sender.py; tests
# pass their own).
Resolver = Callable[[str, int], Awaitable[list[str]]]


class TargetRefused(Exception):  # noqa: N818 - reads as a condition
    """The target resolves to an address the SSRF guard refuses."""


# Cloud metadata endpoints (AWS/GCP/Azure, AWS IPv6, Alibaba); named so the reason is clear.
METADATA_ADDRESSES = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),
        ipaddress.ip_address("fd00:ec2::254"),
        ipaddress.ip_address("100.100.100.200"),
    }
)

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse(text: str) -> IpAddress:
    address = ipaddress.ip_address(text.split("%")[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _embedded(address: IpAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address a 6to4 (2002::/16) or Teredo (2001::/32) address carries: a host with
    such a tunnel reaches that IPv4 address, so it must pass the guard too."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.sixtofour is not None:
            return address.sixtofour
        if address.teredo is not None:
            return address.teredo[1]
    return None


def _reason(address: IpAddress) -> str | None:
    if address in METADATA_ADDRESSES:
        return f"{address} is a cloud metadata address"
    if address.is_loopback:
        return f"{address} is a loopback address"
    if address.is_link_local:
        return f"{address} is a link-local address"
    if address.is_private:
        return f"{address} is a private address"
    if address.is_multicast or address.is_reserved or address.is_unspecified:
        return f"{address} is not a routable unicast address"
    if not address.is_global:
        return f"{address} is not a public address"
    embedded = _embedded(address)
    if embedded is not None and (inner := _reason(embedded)) is not None:
        return f"{address} embeds {inner}"
    return None


def refusal_reason(addresses: Iterable[str], *, allowed: Iterable[str] = ()) -> str | None:
    """Why a target resolving to `addresses` is refused (None: acceptable).

    Every address must be acceptable. `allowed` lists addresses or networks an operator
    explicitly permits (tests allow 127.0.0.1/32).
    """
    allowed_networks = [ipaddress.ip_network(a, strict=False) for a in allowed]
    seen = False
    for text in addresses:
        seen = True
        try:
            address = _parse(text)
        except ValueError:
            return f"{text!r} is not an IP address"
        if any(address in network for network in allowed_networks):
            continue
        reason = _reason(address)
        if reason is not None:
            return reason
    if not seen:
        return "the host resolves to no address"
    return None


async def check_target(
    host: str, port: int, allowed: Sequence[str], resolver: Resolver
) -> list[str]:
    """The addresses to connect to, or TargetRefused (also when the host does not resolve)."""
    try:
        addresses = await resolver(host, port)
    except OSError as error:
        raise TargetRefused(f"the host {host!r} does not resolve: {error}") from error
    reason = refusal_reason(addresses, allowed=allowed)
    if reason is not None:
        raise TargetRefused(reason)
    return addresses
