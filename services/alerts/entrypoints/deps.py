"""Request dependencies of the alerts API, declared once."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.alerts.service.silences import SilenceAdmin
from services.alerts.service.subscriptions import SubscriptionAdmin


def subscription_admin(request: Request) -> SubscriptionAdmin:
    admin: SubscriptionAdmin = request.app.state.subscription_admin
    return admin


def silence_admin(request: Request) -> SilenceAdmin:
    admin: SilenceAdmin = request.app.state.silence_admin
    return admin


Subscriptions = Annotated[SubscriptionAdmin, Depends(subscription_admin)]
Silences = Annotated[SilenceAdmin, Depends(silence_admin)]
