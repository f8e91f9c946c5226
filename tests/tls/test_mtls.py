"""Client certificates (mTLS) on a real Gannet: --ssl-cert-reqs required, optional and none,
what ASGI apps (the tls extension) and WSGI apps (mod_ssl's SSL_CLIENT_* keys) learn of
the client's certificate, and that a certificate which does not verify never reaches an
app (so client_cert_error stays None and SSL_CLIENT_VERIFY is never FAILED).

The DN and certificate fields are checked against ``openssl x509`` (mod_ssl's renderings
are OpenSSL's: ``-nameopt RFC2253,-esc_msb`` is its SSL_CLIENT_S_DN) and cryptography's
RFC 4514 rendering, not against Gannet's own code.
"""
from __future__ import annotations

import json
import socket
import ssl
import subprocess

import httpx
import pytest
from cryptography import x509

from conftest import require_tool
from tls.tls_certs import client_context, expected_chain, openssl_x509, pki  # noqa: F401 - fixture

ASGI = "tls_apps:asgi_app"
WSGI = "tls_apps:wsgi_app"
ALICE_DN = "CN=alice,OU=Clients,O=Example\\, Inc."


def _get(server, context, path="/"):
    with httpx.Client(verify=context, base_url=server.url, timeout=10) as client:
        response = client.get(path)
    assert response.status_code == 200, response.text
    return response.json()


def _refused(server, context) -> None:
    """The handshake (or, in TLS 1.3, the first read after it) fails; nothing is served."""
    with httpx.Client(verify=context, base_url=server.url, timeout=10) as client:
        with pytest.raises(httpx.TransportError):
            client.get("/")


def _dn(pem: str, which: str) -> str:
    """What mod_ssl puts in SSL_CLIENT_S_DN / _I_DN: OpenSSL's RFC 2253 form, UTF-8 kept."""
    line = openssl_x509(pem, f"-{which}", "-nameopt", "RFC2253,-esc_msb")
    return line.split("=", 1)[1]


def _native(text: str) -> str:
    return text.encode("utf-8").decode("latin-1")  # PEP 3333's bytes-as-str


# ---------------------------------------------------------------- --ssl-cert-reqs required
@pytest.mark.parametrize("app", [ASGI, WSGI])
def test_required_refuses_a_client_without_a_certificate(gannet_server, pki, app):
    server = gannet_server(app, *pki.server_args("required"))
    _refused(server, client_context(pki))
    # The app never saw that connection: the next (good) request is its first.
    assert _get(server, client_context(pki, pki.alice))["count"] == 1


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_required_refuses_a_certificate_from_another_ca(gannet_server, pki, version):
    server = gannet_server(ASGI, *pki.server_args("required"))
    _refused(server, client_context(pki, pki.mallory, max_version=version))
    assert _get(server, client_context(pki, pki.alice))["count"] == 1


def test_required_good_certificate_asgi(gannet_server, pki):
    server = gannet_server(ASGI, *pki.server_args("required"))
    tls = _get(server, client_context(pki, pki.alice))["tls"]
    assert tls["client_cert_name"] == ALICE_DN
    assert tls["client_cert_chain"] == expected_chain(pki, pki.alice)
    assert tls["client_cert_chain"][0] == pki.alice.cert_pem
    assert tls["client_cert_error"] is None
    assert tls["server_cert"] == pki.server_cert_pem


def test_required_good_certificate_wsgi(gannet_server, pki):
    server = gannet_server(WSGI, *pki.server_args("required"))
    keys = _get(server, client_context(pki, pki.alice))["keys"]
    pem = pki.alice.cert_pem
    assert keys["HTTPS"] == "on"
    assert keys["SSL_CLIENT_VERIFY"] == "SUCCESS"
    assert keys["SSL_CLIENT_CERT"] == pem
    assert keys["SSL_CLIENT_S_DN"] == _dn(pem, "subject") == ALICE_DN
    assert keys["SSL_CLIENT_I_DN"] == _dn(pem, "issuer")
    assert keys["SSL_CLIENT_S_DN_CN"] == "alice"
    assert keys["SSL_CLIENT_S_DN_O"] == "Example, Inc."
    assert keys["SSL_CLIENT_S_DN_OU"] == "Clients"
    assert keys["SSL_CLIENT_I_DN_O"] == "Gannet Test CA"
    assert keys["SSL_CLIENT_M_SERIAL"] == openssl_x509(pem, "-serial").split("=", 1)[1]
    assert keys["SSL_CLIENT_M_VERSION"] == "3"
    assert keys["SSL_CLIENT_V_START"] == openssl_x509(pem, "-startdate").split("=", 1)[1]
    assert keys["SSL_CLIENT_V_END"] == openssl_x509(pem, "-enddate").split("=", 1)[1]
    chain = expected_chain(pki, pki.alice)[1:]
    assert [keys.get(f"SSL_CLIENT_CERT_CHAIN_{n}") for n in range(len(chain) + 1)] == [*chain, None]


def test_certificate_through_an_intermediate(gannet_server, pki):
    """bob's certificate is issued by an intermediate the client sends with it; the server
    trusts only the root. The chain is what docs/tls.md says for this Python."""
    server = gannet_server(ASGI, *pki.server_args("required"))
    tls = _get(server, client_context(pki, pki.bob))["tls"]
    assert tls["client_cert_chain"] == expected_chain(pki, pki.bob)
    assert tls["client_cert_chain"][0] == pki.bob.cert_pem
    assert tls["client_cert_name"].startswith("CN=bob,")


# ---------------------------------------------------------------- --ssl-cert-reqs optional
def test_optional_serves_a_client_without_a_certificate(gannet_server, pki):
    server = gannet_server(ASGI, *pki.server_args("optional"))
    tls = _get(server, client_context(pki))["tls"]
    assert tls["client_cert_name"] is None
    assert tls["client_cert_chain"] == []
    assert tls["client_cert_error"] is None


def test_optional_sees_a_good_certificate(gannet_server, pki):
    server = gannet_server(ASGI, *pki.server_args("optional"))
    tls = _get(server, client_context(pki, pki.alice))["tls"]
    assert tls["client_cert_name"] == ALICE_DN
    assert tls["client_cert_chain"] == expected_chain(pki, pki.alice)


def test_optional_wsgi_without_and_with_a_certificate(gannet_server, pki):
    server = gannet_server(WSGI, *pki.server_args("optional"))
    keys = _get(server, client_context(pki))["keys"]
    assert keys["SSL_CLIENT_VERIFY"] == "NONE"
    assert not any(key.startswith("SSL_CLIENT_") and key != "SSL_CLIENT_VERIFY" for key in keys)
    keys = _get(server, client_context(pki, pki.alice))["keys"]
    assert keys["SSL_CLIENT_VERIFY"] == "SUCCESS"
    assert keys["SSL_CLIENT_S_DN"] == ALICE_DN


@pytest.mark.parametrize("app", [ASGI, WSGI])
def test_optional_refuses_a_certificate_that_does_not_verify(gannet_server, pki, app):
    """OpenSSL fails the handshake on a bad certificate even when one is optional, so an
    app never sees client_cert_error set nor SSL_CLIENT_VERIFY=FAILED:..."""
    server = gannet_server(app, *pki.server_args("optional"))
    _refused(server, client_context(pki, pki.mallory))
    assert _get(server, client_context(pki))["count"] == 1


# ---------------------------------------------------------------- --ssl-cert-reqs none
def test_none_does_not_take_a_certificate(gannet_server, pki):
    server = gannet_server(ASGI, *pki.server_args("none"))
    tls = _get(server, client_context(pki, pki.alice))["tls"]
    assert tls["client_cert_name"] is None
    assert tls["client_cert_chain"] == []
    wsgi = gannet_server(WSGI, *pki.server_args("none"))
    keys = _get(wsgi, client_context(pki, pki.alice))["keys"]
    assert keys["SSL_CLIENT_VERIFY"] == "NONE"
    assert "SSL_CLIENT_CERT" not in keys


@pytest.mark.parametrize("cert_reqs, asked", [("none", False), ("optional", True), ("required", True)])
def test_certificate_request_is_sent_only_when_asked_for(gannet_server, pki, cert_reqs, asked):
    """The handshake itself, as openssl s_client -msg shows it: a CertificateRequest
    message only with optional and required."""
    openssl = require_tool("openssl")
    server = gannet_server(ASGI, *pki.server_args(cert_reqs))
    result = subprocess.run(
        [openssl, "s_client", "-connect", f"127.0.0.1:{server.port}", "-msg",
         "-CAfile", str(pki.ca_pem), "-cert", str(pki.alice.path), "-key", str(pki.alice.path)],
        input=b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        capture_output=True, timeout=30)
    output = result.stdout.decode("utf-8", "replace")
    assert "ServerHello" in output, output  # the trace is there at all
    assert ("CertificateRequest" in output) == asked, output


# ---------------------------------------------------------------- names and formats
def test_dn_with_every_escape_matches_openssl_and_mod_ssl(gannet_server, pki):
    """Escapes, a multi-valued RDN, UTF-8, a control character and emailAddress: the ASGI
    name is OpenSSL's RFC 2253 rendering (mod_ssl's and nginx's); the WSGI key is the same
    as bytes-as-str; the mod_ssl components are the raw values."""
    pem = pki.odd.cert_pem
    expected = _dn(pem, "subject")
    assert "CN=Zoë Ünïcode+UID=u42" in expected and "emailAddress=" in expected
    asgi = gannet_server(ASGI, *pki.server_args("required"))
    assert _get(asgi, client_context(pki, pki.odd))["tls"]["client_cert_name"] == expected
    wsgi = gannet_server(WSGI, *pki.server_args("required"))
    keys = _get(wsgi, client_context(pki, pki.odd))["keys"]
    assert keys["SSL_CLIENT_S_DN"] == _native(expected)
    assert keys["SSL_CLIENT_S_DN_CN"] == _native("Zoë Ünïcode")
    assert keys["SSL_CLIENT_S_DN_UID"] == "u42"
    assert keys["SSL_CLIENT_S_DN_OU"] == "#hash"
    assert keys["SSL_CLIENT_S_DN_OU_1"] == "tab\there"
    assert keys["SSL_CLIENT_S_DN_O"] == 'Example, Inc. + "Friends" <a;b> back\\slash =eq'
    assert keys["SSL_CLIENT_S_DN_ST"] == " Kent "
    assert keys["SSL_CLIENT_S_DN_Email"] == "zoe@example.com"
    assert keys["SSL_CLIENT_S_DN_C"] == "GB"


def test_dn_is_rfc4514(gannet_server, pki):
    """With RFC 4514's own attribute types (STREET and DC included), the name is what
    cryptography's RFC 4514 rendering gives."""
    pem = pki.plain_odd.cert_pem
    expected = x509.load_pem_x509_certificate(pem.encode()).subject.rfc4514_string()
    assert "STREET=1 Main St\\, Suite #2\\ " in expected
    server = gannet_server(ASGI, *pki.server_args("required"))
    assert _get(server, client_context(pki, pki.plain_odd))["tls"]["client_cert_name"] == expected


def test_resumed_session_still_names_the_client(gannet_server, pki):
    """A TLS 1.2 session resumed from its ticket: OpenSSL keeps the client's certificate
    in the session, and both kinds of app see it again; mod_ssl's SSL_SESSION_RESUMED."""
    context = client_context(pki, pki.alice, max_version=ssl.TLSVersion.TLSv1_2)
    request = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

    def fetch(server, session=None):
        with socket.create_connection((server.host, server.port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname="127.0.0.1", session=session) as tls:
                tls.sendall(request)
                data = b""
                try:
                    while chunk := tls.recv(65536):
                        data += chunk
                except (ssl.SSLEOFError, ConnectionResetError):
                    pass
                return tls.session, tls.session_reused, json.loads(data.partition(b"\r\n\r\n")[2])

    asgi = gannet_server(ASGI, *pki.server_args("required"))
    session, reused, _ = fetch(asgi)
    assert not reused
    _, reused, report = fetch(asgi, session)
    assert reused
    assert report["tls"]["client_cert_name"] == ALICE_DN
    assert report["tls"]["client_cert_chain"][0] == pki.alice.cert_pem

    wsgi = gannet_server(WSGI, *pki.server_args("required"))
    session, _, first = fetch(wsgi)
    assert first["keys"]["SSL_SESSION_RESUMED"] == "Initial"
    _, reused, report = fetch(wsgi, session)
    assert reused
    assert report["keys"]["SSL_SESSION_RESUMED"] == "Resumed"
    assert report["keys"]["SSL_CLIENT_S_DN"] == ALICE_DN
    assert report["keys"]["SSL_CLIENT_VERIFY"] == "SUCCESS"
