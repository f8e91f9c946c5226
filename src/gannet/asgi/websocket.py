"""One WebSocket's ASGI cycle (placeholder until the WebSocket issue lands)."""
from __future__ import annotations

from typing import Any


def install_websocket(state: Any, config: Any) -> None:
    """Set ``state.ws_upgrade``; until WebSockets exist, Upgrade requests stay plain HTTP."""
    state.ws_upgrade = None
