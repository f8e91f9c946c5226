"""--proxy-headers / --forwarded-allow-ips, black-box: what a trusted front end says reaches
the ASGI scope, the WebSocket scope, the WSGI environ and the access log; what anyone else
says changes nothing.

On loopback every peer is 127.0.0.1 (trusted by default), so an *untrusted* client here
connects from 127.0.0.2 (Linux routes all of 127.0.0.0/8 to lo).
"""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import httpx
import pytest
import websockets

from conftest import APPS, ROOT, start_server


def _get(server, path="/x", headers=None, local=None):
    transport = httpx.HTTPTransport(local_address=local) if local else None
    with httpx.Client(transport=transport, timeout=10) as client:
        response = client.get(f"http://{server.host}:{server.port}{path}", headers=headers or {})
    assert response.status_code == 200, response.text
    return response.json()


def _ws(server, headers):
    async def talk():
        async with websockets.connect(f"ws://{server.host}:{server.port}/ws",
                                      additional_headers=headers) as sock:
            return json.loads(await sock.recv())

    return asyncio.run(talk())


@pytest.fixture
def asgi_server(gannet_server):
    return gannet_server("forwarded_apps:asgi")


def test_trusted_peer_sets_client_scheme_host_and_prefix(asgi_server):
    seen = _get(asgi_server, "/items?a=1", {
        "X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "shop.example", "X-Forwarded-Prefix": "/store"})
    assert seen["client"] == ["203.0.113.9", 0]
    assert seen["scheme"] == "https"
    assert seen["server"] == ["shop.example", 443]
    assert seen["host"] == ["shop.example"]
    assert seen["root_path"] == "/store"
    assert seen["path"] == "/store/items"
    assert seen["raw_path"] == "/store/items"


def test_untrusted_peer_changes_nothing(asgi_server):
    seen = _get(asgi_server, headers={
        "X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "evil.example", "X-Forwarded-Prefix": "/p",
        "Forwarded": "for=198.51.100.1;proto=https"}, local="127.0.0.2")
    assert seen["client"][0] == "127.0.0.2"
    assert seen["scheme"] == "http"
    assert seen["host"] == [f"{asgi_server.host}:{asgi_server.port}"]
    assert seen["root_path"] == "" and seen["path"] == "/x"


def test_chain_client_is_the_rightmost_untrusted_address(gannet_server):
    server = gannet_server("forwarded_apps:asgi", "--forwarded-allow-ips", "127.0.0.1,10.0.0.0/8")
    # A client wrote the first entry itself; 10.1.2.3 is a trusted inner proxy.
    seen = _get(server, headers={"X-Forwarded-For": "1.1.1.1, 198.51.100.20, 10.1.2.3"})
    assert seen["client"] == ["198.51.100.20", 0]


def test_rfc7239_forwarded_with_ipv6_and_port(asgi_server):
    seen = _get(asgi_server, headers={"Forwarded": 'for="[2001:db8::7]:4711";proto=https;host=api.example'})
    assert seen["client"] == ["2001:db8::7", 4711]
    assert seen["scheme"] == "https"
    assert seen["server"] == ["api.example", 443]


def test_x_forwarded_wins_over_a_client_sent_forwarded(asgi_server):
    """nginx sets X-Forwarded-For and passes a client's own Forwarded through."""
    seen = _get(asgi_server, headers={"Forwarded": "for=6.6.6.6;proto=https",
                                      "X-Forwarded-For": "203.0.113.5"})
    assert seen["client"] == ["203.0.113.5", 0]
    assert seen["scheme"] == "http"


def test_forwarded_port_alone_sets_server_port_and_host(asgi_server):
    seen = _get(asgi_server, headers={"X-Forwarded-Proto": "https", "X-Forwarded-Port": "8443"})
    assert seen["server"][1] == 8443
    assert seen["host"] == ["127.0.0.1:8443"]
    seen = _get(asgi_server, headers={"X-Forwarded-Proto": "https", "X-Forwarded-Port": "443"})
    assert seen["host"] == ["127.0.0.1"]  # the scheme's default port is left out


def test_forwarded_host_and_port_make_one_host_field(asgi_server):
    """X-Forwarded-Host without a port plus X-Forwarded-Port (what nginx's $host and
    $server_port give): the Host field carries the port, so URLs the app builds do."""
    seen = _get(asgi_server, headers={"X-Forwarded-Host": "app.example", "X-Forwarded-Port": "8080"})
    assert seen["host"] == ["app.example:8080"] and seen["server"] == ["app.example", 8080]
    seen = _get(asgi_server, headers={"X-Forwarded-Host": "app.example", "X-Forwarded-Port": "443",
                                      "X-Forwarded-Proto": "https"})
    assert seen["host"] == ["app.example"] and seen["server"] == ["app.example", 443]


@pytest.mark.parametrize("headers", [
    {"X-Forwarded-For": "not an address"},
    {"X-Forwarded-For": "999.1.1.1"},
    {"X-Forwarded-Proto": "javascript"},
    {"X-Forwarded-Host": "bad host/x"},
    {"X-Forwarded-Port": "99999"},
    {"X-Forwarded-Prefix": "no-leading-slash"},
    {"Forwarded": "for=;;;"},
    {"Forwarded": 'for="unterminated'},
])
def test_malformed_values_are_ignored_never_a_500(asgi_server, headers):
    seen = _get(asgi_server, headers=headers)
    assert seen["client"][0] == "127.0.0.1"
    assert seen["scheme"] == "http"
    assert seen["root_path"] == ""
    assert seen["host"] == [f"{asgi_server.host}:{asgi_server.port}"]


def test_malformed_value_is_a_debug_line(gannet_server):
    server = gannet_server("forwarded_apps:asgi", "--log-level", "debug")
    _get(server, headers={"X-Forwarded-Proto": "gopher"})
    server.wait_for_log(r"forwarded: ignored proto 'gopher'")


def test_no_proxy_headers_turns_it_off(gannet_server):
    server = gannet_server("forwarded_apps:asgi", "--no-proxy-headers")
    seen = _get(server, headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"})
    assert seen["client"][0] == "127.0.0.1" and seen["scheme"] == "http"


def test_websocket_scope_gets_wss_and_the_client(asgi_server):
    seen = _ws(asgi_server, {"X-Forwarded-For": "203.0.113.44", "X-Forwarded-Proto": "https"})
    assert seen["client"] == ["203.0.113.44", 0]
    assert seen["scheme"] == "wss"
    seen = _ws(asgi_server, {"X-Forwarded-Proto": "wss"})
    assert seen["scheme"] == "wss"


def test_wsgi_environ_gets_it_all(gannet_server):
    server = gannet_server("forwarded_apps:wsgi", "--root-path", "/inner")
    seen = _get(server, "/page", {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https",
                                  "X-Forwarded-Host": "shop.example:8443",
                                  "X-Forwarded-Prefix": "/store"})
    assert seen == {"REMOTE_ADDR": "203.0.113.9", "REMOTE_PORT": "0", "wsgi.url_scheme": "https",
                    "HTTP_HOST": "shop.example:8443", "SERVER_NAME": "shop.example",
                    "SERVER_PORT": "8443", "SCRIPT_NAME": "/store", "PATH_INFO": "/page"}
    # Without a prefix, --root-path stays SCRIPT_NAME.
    seen = _get(server, "/page", {"X-Forwarded-For": "203.0.113.9"})
    assert seen["SCRIPT_NAME"] == "/inner" and seen["PATH_INFO"] == "/page"


def test_access_log_shows_the_forwarded_client(gannet_server):
    server = gannet_server("forwarded_apps:asgi", "--access-log-format", "%(h)s %(client_addr)s")
    _get(server, headers={"X-Forwarded-For": "203.0.113.77"})
    server.wait_for_log(r"203\.0\.113\.77 203\.0\.113\.77:0")


def test_unix_socket_peers_are_trusted_by_default(tmp_path):
    path = str(tmp_path / "g.sock")
    server = start_server("forwarded_apps:asgi", "--uds", path, port_args=())
    try:
        transport = httpx.HTTPTransport(uds=path)
        with httpx.Client(transport=transport, timeout=10) as client:
            seen = client.get("http://localhost/x", headers={"X-Forwarded-For": "203.0.113.3",
                                                              "X-Forwarded-Proto": "https"}).json()
        assert seen["client"] == ["203.0.113.3", 0] and seen["scheme"] == "https"
    finally:
        server.stop()


def test_forwarded_allow_ips_from_uvicorns_variable_and_gannets_wins(gannet_server):
    server = gannet_server("forwarded_apps:asgi", env={"FORWARDED_ALLOW_IPS": "127.0.0.2"})
    seen = _get(server, headers={"X-Forwarded-For": "203.0.113.9"}, local="127.0.0.2")
    assert seen["client"] == ["203.0.113.9", 0]
    seen = _get(server, headers={"X-Forwarded-For": "203.0.113.9"})  # 127.0.0.1: no longer trusted
    assert seen["client"][0] == "127.0.0.1"
    server = gannet_server("forwarded_apps:asgi", env={"FORWARDED_ALLOW_IPS": "127.0.0.2",
                                                       "GANNET_FORWARDED_ALLOW_IPS": "127.0.0.1"})
    seen = _get(server, headers={"X-Forwarded-For": "203.0.113.9"}, local="127.0.0.2")
    assert seen["client"][0] == "127.0.0.2"


@pytest.mark.parametrize("value", ["10.0.0.300", "example.com", "10.0.0.0/33", ""])
def test_bad_allow_list_is_a_start_up_error(value):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(APPS), str(ROOT / "src")]))
    result = subprocess.run([sys.executable, "-m", "gannet", "forwarded_apps:asgi",
                             "--forwarded-allow-ips", value], capture_output=True, text=True,
                            env=env, timeout=30, cwd=str(APPS))
    assert result.returncode == 2
    assert f"--forwarded-allow-ips: {value!r}" in result.stderr or (
        not value and "expected a comma-separated list" in result.stderr)


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def test_big_forwarding_fields_are_not_remembered_across_requests(asgi_server):
    """The per-server memo of resolved forwarding fields must not keep what a request
    carried: a client behind a trusted front end that appends to its X-Forwarded-For
    (nginx, Apache allow ~800 KiB of fields) would otherwise pin 1024 such heads in each
    worker. 150 requests of ~720 KiB of distinct X-Forwarded-For: kept, ~100 MiB."""
    import socket

    with socket.create_connection((asgi_server.host, asgi_server.port), timeout=10) as sock:
        def ask(index: int) -> None:
            fields = b"".join(b"X-Forwarded-For: %s, 10.%d.%d.%d\r\n" % (
                b"x" * 8000, index >> 8, index & 255, line) for line in range(90))
            sock.sendall(b"GET /x HTTP/1.1\r\nHost: h\r\n" + fields + b"\r\n")
            data = b""
            while not data.endswith(b"}"):
                chunk = sock.recv(65536)
                assert chunk, data
                data += chunk
            assert b'"client": ["10.' in data, data[-300:]

        for index in range(10):  # the allocator's working set for one such request
            ask(index)
        before = _rss_kib(asgi_server.proc.pid)
        for index in range(10, 160):
            ask(index)
        grown = _rss_kib(asgi_server.proc.pid) - before
    assert grown < 30 * 1024, f"RSS grew {grown} KiB over 150 requests"


@pytest.mark.parametrize("interface", ["asgi", "wsgi"])
def test_forwarded_prefix_keeps_raw_path_encoded(gannet_server, interface):
    """raw_path is the path as sent (ASGI): the prefix's own percent-escapes stay escaped
    there, while root_path and path are decoded; SCRIPT_NAME is the decoded prefix."""
    server = gannet_server(f"forwarded_apps:{interface}")
    seen = _get(server, "/x%20y", {"X-Forwarded-Prefix": "/my%20app/caf%C3%A9/"})
    if interface == "asgi":
        assert seen["root_path"] == "/my app/café"
        assert seen["path"] == "/my app/café/x y"
        assert seen["raw_path"] == "/my%20app/caf%C3%A9/x%20y"
    else:
        assert seen["SCRIPT_NAME"] == "/my app/café".encode().decode("latin-1")
        assert seen["PATH_INFO"] == "/x y"


@pytest.mark.parametrize("prefix", ["/p?a=1", "/p#frag", "/p/?"])
def test_forwarded_prefix_with_a_query_or_fragment_is_ignored(asgi_server, prefix):
    """A mount point is a path: '?' or '#' in it (unescaped) would put a query into
    root_path and raw_path, and URLs rebuilt from them would be wrong."""
    seen = _get(asgi_server, headers={"X-Forwarded-Prefix": prefix})
    assert seen["root_path"] == "" and seen["path"] == "/x" and seen["raw_path"] == "/x"


def test_forwarded_prefix_equal_to_root_path_but_escaped_is_still_the_mount(gannet_server):
    """X-Forwarded-Prefix /my%20app under --root-path '/my app': the same mount point, sent
    escaped. SCRIPT_NAME is it and PATH_INFO the rest, not an empty SCRIPT_NAME and the
    whole path (which is what a path outside the mount gets)."""
    server = gannet_server("forwarded_apps:wsgi", "--root-path", "/my app")
    seen = _get(server, "/x", {"X-Forwarded-Prefix": "/my%20app"})
    assert (seen["SCRIPT_NAME"], seen["PATH_INFO"]) == ("/my app", "/x")


@pytest.mark.parametrize("headers", [
    {"X-Forwarded-For": "fe80::1%eth0"},
    {"X-Forwarded-For": "198.51.100.1, fe80::1%<script>"},
    {"Forwarded": 'for="[fe80::1%eth0]:80"'},
])
def test_forwarded_address_with_a_zone_id_is_not_an_address(asgi_server, headers):
    """A zone id names an interface of the host that wrote it, meaningless here, and after
    the '%' anything goes: the app's client host would be free text of the sender's."""
    seen = _get(asgi_server, headers=headers)
    assert seen["client"][0] == "127.0.0.1", seen


def test_forwarded_headers_limits_what_a_trusted_peer_sets(gannet_server):
    """Behind an AWS ALB (it writes X-Forwarded-For, -Proto, -Port and passes a client's
    own -Host and -Prefix through), only what the balancer writes may count."""
    server = gannet_server("forwarded_apps:asgi", "--forwarded-headers",
                           "X-Forwarded-For,x-forwarded-proto,x-forwarded-port")
    seen = _get(server, headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https",
                                 "X-Forwarded-Port": "443", "X-Forwarded-Host": "evil.example",
                                 "X-Forwarded-Prefix": "/evil", "Forwarded": "for=6.6.6.6"})
    assert seen["client"] == ["203.0.113.9", 0] and seen["scheme"] == "https"
    assert seen["host"] == ["127.0.0.1"]  # the port comes, the host does not
    assert seen["root_path"] == ""
    seen = _get(server, headers={"Forwarded": "for=6.6.6.6;proto=https"})
    assert seen["client"][0] == "127.0.0.1" and seen["scheme"] == "http"


def test_forwarded_headers_must_be_known_names():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(APPS), str(ROOT / "src")]))
    result = subprocess.run([sys.executable, "-m", "gannet", "forwarded_apps:asgi",
                             "--forwarded-headers", "x-forwarded-for,x-real-ip"],
                            capture_output=True, text=True, env=env, timeout=30, cwd=str(APPS))
    assert result.returncode == 2
    assert "--forwarded-headers: 'x-real-ip': not a forwarding header Gannet reads" in result.stderr


def test_forwarded_headers_must_not_be_empty(tmp_path):
    """An empty list (a config file's ``forwarded_headers = []``) is refused like an empty
    --forwarded-headers, rather than a server that silently believes no header at all."""
    config = tmp_path / "gannet.toml"
    config.write_text("forwarded_headers = []\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(APPS), str(ROOT / "src")]))
    result = subprocess.run([sys.executable, "-m", "gannet", "forwarded_apps:asgi", "-c", str(config)],
                            capture_output=True, text=True, env=env, timeout=30, cwd=str(APPS))
    assert result.returncode == 2, result.stderr
    assert "forwarded_headers" in result.stderr and "--no-proxy-headers" in result.stderr


def test_one_keep_alive_connection_with_changing_forwarded_clients(asgi_server):
    """nginx's upstream keep-alive carries many clients on one connection: each request
    gets its own forwarded client, whatever the one before it said."""
    import socket

    def ask(sock, xff):
        sock.sendall(b"GET /x HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: " + xff + b"\r\n\r\n")
        data = b""
        while not data.endswith(b"}"):
            chunk = sock.recv(65536)
            assert chunk
            data += chunk
        return json.loads(data.split(b"\r\n\r\n", 1)[1])["client"]

    with socket.create_connection((asgi_server.host, asgi_server.port), timeout=10) as sock:
        seen = [ask(sock, value) for value in (b"203.0.113.1", b"203.0.113.1", b"198.51.100.2",
                                                b"203.0.113.1", b"garbage")]
    assert [client[0] for client in seen] == ["203.0.113.1", "203.0.113.1", "198.51.100.2",
                                              "203.0.113.1", "127.0.0.1"]
