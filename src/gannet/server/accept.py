"""Which protocol serves a new connection: decided here, once per listener.

The listener says which wire protocol it speaks (HTTP/1.1, or uwsgi for --uwsgi-socket);
``--proxy-protocol`` puts a ``ProxyGate`` (server/proxy.py) in front of either, which
hands the connection over once the PROXY header is read. This is the one place a new
connection's protocol is chosen: TLS with ALPN (h2 or http/1.1) plugs in here. Without a
gate, the factory is the protocol class's constructor call and nothing else, because it
runs for every accepted connection.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from ..http.h1 import H1Protocol

if TYPE_CHECKING:
    from .listeners import Listener
    from .state import ServerState

__all__ = ["protocol_factory"]


def protocol_factory(state: "ServerState", listener: "Listener") -> Callable[[], Any]:
    """The protocol factory for ``loop.create_server`` on ``listener``."""
    make: Callable[[], Any]
    if listener.protocol == "uwsgi":
        from ..http.uwsgi import UwsgiProtocol

        make = lambda: UwsgiProtocol(state)  # noqa: E731
    elif state.ssl_context is not None:
        from .tls import TLSGate

        context = state.ssl_context
        make = lambda: TLSGate(state, protocol_for(state), context)  # noqa: E731
    else:
        make = lambda: H1Protocol(state)  # noqa: E731
    if state.proxy_protocol != "off":
        from .proxy import ProxyGate

        return lambda: ProxyGate(state, make)
    return make


def protocol_for(state: "ServerState") -> Callable[[str | None], Any]:
    """What serves a TLS connection, by the ALPN protocol its handshake settled on
    (None: the client offered none). HTTP/2 adds "h2" here."""
    def choose(alpn: str | None) -> Any:
        return H1Protocol(state)

    return choose
