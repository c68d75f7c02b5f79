"""Delivery settings: the lease always outlasts the longest attempt."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.alerts.settings import AlertsSettings


def test_the_lease_is_derived_from_the_deadline_plus_the_margin() -> None:
    """Unset, the lease is the attempt deadline plus the margin; the defaults are 15 s and 64 KB."""
    settings = AlertsSettings()
    assert settings.delivery_timeout_s == 15.0
    assert settings.max_response_bytes == 64 * 1024
    assert settings.effective_lease_s == 30.0
    assert AlertsSettings(delivery_timeout_s=2, lease_margin_s=1).effective_lease_s == 3.0


def test_a_lease_shorter_than_an_attempt_is_refused() -> None:
    """A lease that could end while its attempt is open is a configuration error; a longer
    one is kept as given."""
    with pytest.raises(ValidationError, match="lease_s"):
        AlertsSettings(delivery_timeout_s=15, lease_s=20)
    assert AlertsSettings(delivery_timeout_s=15, lease_s=120).effective_lease_s == 120.0
