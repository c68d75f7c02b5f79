"""Which webhook targets are refused: loopback, private, link-local, metadata, reserved ranges."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

# Cloud metadata endpoints sit in link-local space already; named here so the reason is clear.
METADATA_ADDRESSES = frozenset({"169.254.169.254", "fd00:ec2::254", "100.100.100.200"})


def refusal_reason(addresses: Iterable[str], *, allowed: Iterable[str] = ()) -> str | None:
    """Why a target resolving to `addresses` is refused (None: acceptable).

    `allowed` lists addresses or networks an operator explicitly permits (tests allow 127.0.0.1).
    """
    allowed_networks = [ipaddress.ip_network(a, strict=False) for a in allowed]
    for text in addresses:
        address = ipaddress.ip_address(text.split("%")[0])
        if any(address in network for network in allowed_networks):
            continue
        if text in METADATA_ADDRESSES:
            return f"{text} is a cloud metadata address"
        if address.is_loopback:
            return f"{text} is a loopback address"
        if address.is_link_local:
            return f"{text} is a link-local address"
        if address.is_private:
            return f"{text} is a private address"
        if address.is_multicast or address.is_reserved or address.is_unspecified:
            return f"{text} is not a routable unicast address"
    return None
