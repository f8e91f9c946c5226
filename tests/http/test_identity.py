"""http/identity.py without sockets: the memo of resolved chains, trust per sender."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

from gannet.config import Config
from gannet.http.identity import _MEMO_MAX, apply_forwarded
from gannet.server.state import ServerState


def _state(**options):
    async def make():
        return ServerState(Config(app="x:y", access_log=False, **options), None,
                           asyncio.get_running_loop())
    return asyncio.run(make())


def _scope():
    return {"client": ("127.0.0.1", 5000), "scheme": "http", "server": ("127.0.0.1", 8000),
            "root_path": "", "path": "/", "raw_path": b"/", "headers": [(b"host", b"h")]}


def _conn(sender="127.0.0.1", client=("127.0.0.1", 5000)):
    return SimpleNamespace(sender=sender, sender_trusted=None, client=client)


def test_the_memo_of_resolved_chains_is_bounded():
    state = _state()
    conn = _conn()
    for index in range(3 * _MEMO_MAX):
        scope = _scope()
        apply_forwarded(state, conn, scope, [(b"x-forwarded-for", b"10.0.%d.%d" % divmod(index, 256))])
        assert scope["client"] == ("10.0.%d.%d" % divmod(index, 256), 0)
        assert len(state.forwarded_memo) <= _MEMO_MAX


def test_trust_is_the_senders_not_the_named_clients():
    """A PROXY header or uwsgi vars name the client; the proxy that connected wrote the
    headers, so its address decides whether they are believed."""
    state = _state()
    scope = _scope()
    apply_forwarded(state, _conn("127.0.0.1", ("198.51.100.7", 5555)), scope,
                    [(b"x-forwarded-proto", b"https")])
    assert scope["scheme"] == "https" and scope["client"] == ("198.51.100.7", 5555)
    scope = _scope()
    apply_forwarded(state, _conn("198.51.100.7", ("198.51.100.7", 5555)), scope,
                    [(b"x-forwarded-proto", b"https")])
    assert scope["scheme"] == "http"


def test_each_server_has_its_own_memo():
    trusting, distrusting = _state(), _state(forwarded_allow_ips="10.9.9.9")
    fields = [(b"x-forwarded-for", b"203.0.113.1")]
    scope = _scope()
    apply_forwarded(trusting, _conn(), scope, fields)
    assert scope["client"] == ("203.0.113.1", 0)
    scope = _scope()
    apply_forwarded(distrusting, _conn(), scope, fields)
    assert scope["client"] == ("127.0.0.1", 5000)
