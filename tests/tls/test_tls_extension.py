"""The ASGI ``tls`` extension (asgiref specs/tls.rst) and the WSGI HTTPS/SSL_* keys, seen by
apps on a real Gannet over TLS (tests/apps/tls_apps.py); and nothing of either on a plain
connection. Client certificates and --ssl-cert-reqs are test_mtls.py's.
"""
from __future__ import annotations

import json
import socket
import ssl

import httpx
import pytest
from websockets.sync.client import connect as ws_connect

from tls.tls_certs import IANA_SUITES, client_context, expected_chain, pki  # noqa: F401 - pki is a fixture

from gannet.http.tls_info import ConnectionTLS, cipher_suite_id

ASGI = "tls_apps:asgi_app"
WSGI = "tls_apps:wsgi_app"
EXTENSION_KEYS = {"server_cert", "client_cert_chain", "client_cert_name", "client_cert_error",
                  "tls_version", "cipher_suite"}
WSGI_TLS_KEYS = {"HTTPS", "SSL_PROTOCOL", "SSL_CIPHER", "SSL_CIPHER_USEKEYSIZE",
                 "SSL_CIPHER_ALGKEYSIZE", "SSL_SESSION_RESUMED", "SSL_CLIENT_VERIFY"}


def _get(server, context, path="/"):
    """One request over TLS; the app's JSON and the client's own view of the session."""
    with httpx.Client(verify=context, base_url=server.url, timeout=10) as client:
        response = client.get(path)
        ssl_object = response.extensions["network_stream"].get_extra_info("ssl_object")
        negotiated = (ssl_object.version(), ssl_object.cipher())
    assert response.status_code == 200, response.text
    return response.json(), negotiated


# ---------------------------------------------------------------- ASGI: the tls extension
def test_https_request_has_the_tls_extension(gannet_server, pki):
    server = gannet_server(ASGI, *pki.server_args("none"))
    assert server.url.startswith("https://")
    report, (version, cipher) = _get(server, client_context(pki))
    assert report["has_tls"] is True
    tls = report["tls"]
    assert set(tls) - {"chain_type"} == EXTENSION_KEYS
    assert tls["server_cert"] == pki.server_cert_pem
    assert tls["client_cert_chain"] == []
    assert tls["client_cert_name"] is None
    assert tls["client_cert_error"] is None
    assert tls["tls_version"] == {"TLSv1.3": 0x0304, "TLSv1.2": 0x0303}[version]
    assert tls["cipher_suite"] == IANA_SUITES[cipher[0]]
    assert report["scheme"] == "https"
    # The extensions an ASGI request always has are still there beside it.
    assert "http.response.trailers" in report["extension_names"]


@pytest.mark.parametrize("max_version, expected", [
    (ssl.TLSVersion.TLSv1_2, 0x0303),
    (ssl.TLSVersion.TLSv1_3, 0x0304),
])
def test_tls_version_is_the_negotiated_one(gannet_server, pki, max_version, expected):
    server = gannet_server(ASGI, *pki.server_args("none"))
    report, (version, cipher) = _get(server, client_context(pki, max_version=max_version))
    assert version == {0x0303: "TLSv1.2", 0x0304: "TLSv1.3"}[expected]
    assert report["tls"]["tls_version"] == expected
    assert report["tls"]["cipher_suite"] == IANA_SUITES[cipher[0]]


@pytest.mark.parametrize("cipher_name", [
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
])
def test_tls12_cipher_suite_is_the_iana_id_the_client_negotiated(gannet_server, pki, cipher_name):
    server = gannet_server(ASGI, *pki.server_args("none"))
    context = client_context(pki, max_version=ssl.TLSVersion.TLSv1_2, ciphers=cipher_name)
    report, (version, cipher) = _get(server, context)
    assert (version, cipher[0]) == ("TLSv1.2", cipher_name)
    assert report["tls"]["cipher_suite"] == IANA_SUITES[cipher_name]


def test_each_request_gets_its_own_tls_dict(gannet_server, pki):
    """An app that rewrites its tls dict changes no later request on the connection."""
    server = gannet_server(ASGI, *pki.server_args("optional"))
    context = client_context(pki, pki.alice)
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with httpx.Client(verify=context, base_url=server.url, timeout=10, limits=limits) as client:
        first = client.get("/mutate")
        stream = first.extensions["network_stream"]
        second = client.get("/")
        assert second.extensions["network_stream"] is stream  # the same connection
    assert first.json()["tls"] == second.json()["tls"]
    tls = second.json()["tls"]
    assert tls["client_cert_name"] == "CN=alice,OU=Clients,O=Example\\, Inc."
    assert "added" not in tls
    assert tls["client_cert_chain"] == expected_chain(pki, pki.alice)


def test_websocket_over_wss_has_the_tls_extension(gannet_server, pki):
    server = gannet_server(ASGI, *pki.server_args("optional"))
    context = client_context(pki, pki.alice)
    with ws_connect(f"wss://127.0.0.1:{server.port}/", ssl=context, open_timeout=10) as ws:
        report = json.loads(ws.recv(timeout=10))
    assert report["scheme"] == "wss"
    assert report["has_tls"] is True
    tls = report["tls"]
    assert set(tls) - {"chain_type"} == EXTENSION_KEYS
    assert tls["server_cert"] == pki.server_cert_pem
    assert tls["client_cert_name"] == "CN=alice,OU=Clients,O=Example\\, Inc."
    assert tls["client_cert_chain"] == expected_chain(pki, pki.alice)
    assert tls["tls_version"] == 0x0304
    assert tls["cipher_suite"] in (0x1301, 0x1302, 0x1303)
    assert "websocket.http.response" in report["extension_names"]


def test_proxy_protocol_then_tls_has_the_tls_extension(gannet_server, pki):
    """A PROXY header in the clear, then Gannet's own TLS: the same extension, and the
    client the header names."""
    server = gannet_server(ASGI, *pki.server_args("optional"), "--proxy-protocol", "v1")
    context = client_context(pki, pki.alice)
    with socket.create_connection((server.host, server.port), timeout=10) as raw:
        raw.sendall(b"PROXY TCP4 203.0.113.7 127.0.0.1 40000 443\r\n")
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"GET / HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n")
            data = b""
            try:
                while chunk := tls.recv(65536):
                    data += chunk
            except (ssl.SSLEOFError, ConnectionResetError):
                pass
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), data[:200]
    report = json.loads(body)
    assert report["client"] == ["203.0.113.7", 40000]
    assert report["scheme"] == "https"
    assert report["has_tls"] is True
    assert report["tls"]["client_cert_name"] == "CN=alice,OU=Clients,O=Example\\, Inc."
    assert report["tls"]["server_cert"] == pki.server_cert_pem


# ---------------------------------------------------------------- WSGI: HTTPS and SSL_*
@pytest.mark.parametrize("max_version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_wsgi_environ_has_mod_ssl_keys(gannet_server, pki, max_version):
    server = gannet_server(WSGI, *pki.server_args("none"))
    report, (version, cipher) = _get(server, client_context(pki, max_version=max_version))
    keys = report["keys"]
    assert set(keys) == WSGI_TLS_KEYS
    assert keys["HTTPS"] == "on"
    assert keys["SSL_PROTOCOL"] == version
    assert keys["SSL_CIPHER"] == cipher[0]
    assert keys["SSL_CIPHER_USEKEYSIZE"] == str(cipher[2])
    assert keys["SSL_CIPHER_ALGKEYSIZE"] == str(cipher[2])  # AEAD suites: the same
    assert keys["SSL_SESSION_RESUMED"] == "Initial"
    assert keys["SSL_CLIENT_VERIFY"] == "NONE"
    assert report["scheme"] == "https"


# ---------------------------------------------------------------- plain connections
def test_plain_http_has_no_tls_extension_and_no_ssl_keys(gannet_server):
    asgi = gannet_server(ASGI)
    report = httpx.get(asgi.url + "/", timeout=10).json()
    assert report["has_tls"] is False
    assert "tls" not in report["extension_names"]
    assert report["scheme"] == "http"
    with ws_connect(f"ws://127.0.0.1:{asgi.port}/", open_timeout=10) as ws:
        ws_report = json.loads(ws.recv(timeout=10))
    assert ws_report["has_tls"] is False
    assert ws_report["extension_names"] == ["websocket.http.response"]
    wsgi = gannet_server(WSGI)
    assert httpx.get(wsgi.url + "/", timeout=10).json()["keys"] == {}


def test_forwarded_https_is_not_gannets_tls(gannet_server):
    """X-Forwarded-Proto: https from a trusted proxy makes the scheme https, but the TLS
    was the proxy's: no extension, no SSL_* keys (the spec forbids it on non-TLS)."""
    headers = {"X-Forwarded-Proto": "https"}
    asgi = gannet_server(ASGI, "--proxy-headers", "--forwarded-allow-ips", "127.0.0.1")
    report = httpx.get(asgi.url + "/", headers=headers, timeout=10).json()
    assert report["scheme"] == "https"
    assert report["has_tls"] is False
    wsgi = gannet_server(WSGI, "--proxy-headers", "--forwarded-allow-ips", "127.0.0.1")
    report = httpx.get(wsgi.url + "/", headers=headers, timeout=10).json()
    assert report["scheme"] == "https"
    assert report["keys"] == {}


# ---------------------------------------------------------------- what Python gives
class _FakeCert:
    def __init__(self, pem: str) -> None:
        self.pem = pem

    def public_bytes(self) -> str:
        return self.pem


class _FakeContext:
    def get_ciphers(self):
        return ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).get_ciphers()


class _FakeSSLObject:
    """An SSLObject of Python 3.13+ (get_verified_chain), which this Python may not be."""

    context = _FakeContext()

    def __init__(self, leaf_pem: str, verified: list[str], reused: bool = False) -> None:
        self.leaf = ssl.PEM_cert_to_DER_cert(leaf_pem)
        self.verified = verified
        self.session_reused = reused

    def cipher(self):
        return ("TLS_AES_128_GCM_SHA256", "TLSv1.3", 128)

    def version(self):
        return "TLSv1.3"

    def getpeercert(self, binary_form=False):
        if binary_form:
            return self.leaf
        return {"subject": ((("commonName", "bob"),),), "issuer": ((("commonName", "ca"),),)}

    def get_verified_chain(self):
        return [_FakeCert(pem) for pem in self.verified]


def _extension_of(ssl_object) -> dict:
    scope = {"extensions": {}}
    ConnectionTLS(ssl_object).add_to(scope, True)
    return scope["extensions"]["tls"]


def test_verified_chain_is_used_where_python_has_it(pki):
    chain = [pki.bob.cert_pem, pki.intermediate_pem, pki.ca_cert_pem]
    tls = _extension_of(_FakeSSLObject(pki.bob.cert_pem, chain))
    assert list(tls["client_cert_chain"]) == chain
    assert tls["client_cert_name"] == "CN=bob"
    assert tls["cipher_suite"] == 0x1301


def test_resumed_session_without_a_verified_chain_gives_the_leaf(pki):
    """OpenSSL keeps the peer's certificate in the session, not the verified chain."""
    tls = _extension_of(_FakeSSLObject(pki.bob.cert_pem, [], reused=True))
    assert list(tls["client_cert_chain"]) == [pki.bob.cert_pem]


@pytest.mark.parametrize("name, iana", sorted(IANA_SUITES.items()))
def test_cipher_suite_ids_match_the_registry(name, iana):
    assert cipher_suite_id(name) == iana
