"""http/identity.py without sockets: the memo of resolved chains, trust per sender."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

from hypothesis import given, settings, strategies as st

from gannet.config import Config
from gannet.http.forwarded import resolve
from gannet.http.identity import _MEMO_MAX, _simple_plan, apply_forwarded
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
    return SimpleNamespace(sender=sender, sender_trusted=None, client=client,
                           forwarded_fields=None, forwarded_plan=None)


def test_the_memo_of_resolved_chains_is_bounded():
    state = _state()
    conn = _conn()
    for index in range(3 * _MEMO_MAX):
        scope = _scope()
        apply_forwarded(state, conn, scope, [(b"x-forwarded-for", b"10.0.%d.%d" % divmod(index, 256))])
        assert scope["client"] == ("10.0.%d.%d" % divmod(index, 256), 0)
        assert len(state.forwarded_memo) <= _MEMO_MAX


def test_trust_is_the_senders_not_the_named_clients():
    """conn.sender (who wrote the headers) decides, not conn.client (where the chain
    starts); h1, the PROXY gate and uwsgi set the two."""
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


_VALUES = st.sampled_from([b"203.0.113.9", b" 203.0.113.9 ", b"127.0.0.1", b"::1", b"[2001:db8::1]:80",
                           b"1.2.3.4:5", b"::ffff:10.0.0.1", b"unknown", b"", b"999.1.1.1",
                           b"1.2.3.4, 5.6.7.8", b"http", b"https", b"HTTPS ", b"wss", b"ws",
                           b"gopher", b"https, http"])
_NAMES = st.sampled_from([b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host",
                          b"forwarded"])
_CLIENTS = st.sampled_from([("127.0.0.1", 5000), ("::ffff:127.0.0.1", 7), ("10.0.0.1", 0), None])


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(_NAMES, _VALUES), min_size=1, max_size=3), _CLIENTS)
def test_the_fast_path_agrees_with_resolve(fields, client):
    """_simple_plan answers only the shapes it knows, and then as resolve does."""
    trusted = _state().forwarded_trust
    plan = _simple_plan(client, fields)
    if plan is False:
        return
    resolved = resolve(client[0] if client else None, client[1] if client else None, fields,
                       trusted, sender_trusted=True)
    if resolved is None:
        assert plan is None
    else:
        assert plan == (resolved.client, resolved.scheme, None)
        assert resolved.host is None and resolved.port is None and not resolved.prefix


def test_the_fast_path_takes_the_common_shapes():
    assert _simple_plan(("127.0.0.1", 1), [(b"x-forwarded-for", b"203.0.113.9"),
                                           (b"x-forwarded-proto", b"https")]) == (("203.0.113.9", 0), "https", None)
    assert _simple_plan(("127.0.0.1", 1), [(b"x-forwarded-for", b"1.1.1.1, 2.2.2.2")]) is False


def test_forwarding_the_address_that_connected_keeps_its_port():
    """HAProxy with a PROXY header and option forwardfor: X-Forwarded-For repeats the
    PROXY source, whose port we know; port 0 would lose it."""
    state = _state()
    scope = _scope()
    apply_forwarded(state, _conn("127.0.0.1", ("198.51.100.7", 5555)), scope,
                    [(b"x-forwarded-for", b"198.51.100.7"), (b"x-forwarded-proto", b"https")])
    assert scope["client"] == ("198.51.100.7", 5555) and scope["scheme"] == "https"
    scope = _scope()
    apply_forwarded(state, _conn("127.0.0.1", ("198.51.100.7", 5555)), scope,
                    [(b"x-forwarded-for", b"198.51.100.8")])
    assert scope["client"] == ("198.51.100.8", 0)


def test_the_memo_keeps_small_field_sets_only():
    """A key holds its fields: a few long values (a client's own X-Forwarded-For, which a
    front end appends to) must not be kept, while the usual chain is."""
    state = _state()
    long_chain = b"198.51.100.7, " * 40 + b"10.0.0.1"
    apply_forwarded(state, _conn(), _scope(), [(b"x-forwarded-for", long_chain)])
    assert not state.forwarded_memo
    apply_forwarded(state, _conn(), _scope(), [(b"x-forwarded-for", b"198.51.100.7, 10.0.0.1"),
                                               (b"x-forwarded-proto", b"https")])
    assert len(state.forwarded_memo) == 1
