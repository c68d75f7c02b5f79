"""The SSRF guard refuses internal targets unless an operator allows them."""

from __future__ import annotations

import pytest

from services.alerts.domain.ssrf import refusal_reason


@pytest.mark.parametrize(
    ("address", "word"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.5", "private"),
        ("192.168.1.1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("100.100.100.200", "metadata"),
        ("169.254.10.10", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("0.0.0.0", "address"),
        ("224.0.0.1", "routable"),
        ("100.64.0.1", "address"),
        ("not-an-ip", "not an IP"),
    ],
)
def test_internal_addresses_are_refused(address: str, word: str) -> None:
    """Loopback, private, link-local, metadata and other non-public ranges are refused."""
    reason = refusal_reason([address])
    assert reason is not None
    assert word in reason


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"])
def test_public_addresses_pass(address: str) -> None:
    """Public unicast addresses are acceptable."""
    assert refusal_reason([address]) is None


def test_every_address_must_pass() -> None:
    """A host with one public and one private address is refused (DNS may pick either)."""
    assert refusal_reason(["93.184.215.14", "10.0.0.1"]) is not None
    assert refusal_reason([]) is not None


def test_allowed_networks_are_explicit() -> None:
    """An allowed network admits exactly its addresses: 127.0.0.1/32 does not admit ::1."""
    assert refusal_reason(["127.0.0.1"], allowed=["127.0.0.1/32"]) is None
    assert refusal_reason(["127.0.0.2"], allowed=["127.0.0.1/32"]) is not None
    assert refusal_reason(["127.0.0.1", "::1"], allowed=["127.0.0.1/32"]) is not None
    assert refusal_reason(["10.0.0.7"], allowed=["10.0.0.0/8"]) is None
