"""Fault injection: importing this app makes socket.getaddrinfo raise RuntimeError, so
the server's own binding code meets an error that is not an OSError (a stand-in for a bug
in Gannet's start-up code after the app loaded)."""
import socket


def _broken_getaddrinfo(*args, **kwargs):
    raise RuntimeError("injected getaddrinfo fault (proc)")


socket.getaddrinfo = _broken_getaddrinfo


async def app(scope, receive, send):  # never reached: binding fails first
    raise AssertionError("unreachable")
