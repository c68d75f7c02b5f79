"""Request dependencies of the alerts API, declared once."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.alerts.commands import AdminCommands


def admin_commands(request: Request) -> AdminCommands:
    commands: AdminCommands = request.app.state.commands
    return commands


Commands = Annotated[AdminCommands, Depends(admin_commands)]
