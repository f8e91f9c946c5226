"""Real TLS clients against Gannet's HTTPS/WSS: curl, openssl s_client, httpx (ASGI and
WSGI), the websockets client over wss://, and headless Chromium (issue 13)."""
from __future__ import annotations

import json
import os
import re
import socket
import ssl
import subprocess
import threading
import warnings

import httpx
import pytest
from websockets.sync.client import connect as ws_connect

from conftest import require_tool
from tls.conftest import TLSFiles, client_context

ASGI = "tls_clients_apps:asgi_app"
WSGI = "tls_clients_apps:wsgi_app"


# ------------------------------------------------------------------ curl
def _curl(*args: str, timeout: float = 20) -> subprocess.CompletedProcess:
    curl = require_tool("curl")
    return subprocess.run([curl, "-sS", "--http1.1", "--max-time", "10", *args],
                          capture_output=True, timeout=timeout)


def test_curl_gets_a_page_over_https(tls_server, tls_files):
    server = tls_server(ASGI)
    done = _curl("--cacert", str(tls_files.ca_pem), "-w", "\n%{http_version} %{ssl_verify_result}",
                 f"https://127.0.0.1:{server.port}/")
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"hello over tls\n1.1 0"  # verified (0) against the test CA
    # and by name, as a browser would (the certificate names localhost too)
    done = _curl("--cacert", str(tls_files.ca_pem),
                 "--resolve", f"localhost:{server.port}:127.0.0.1",
                 f"https://localhost:{server.port}/scope")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["scheme"] == "https"


def test_curl_posts_a_body_over_https(tls_server, tls_files, tmp_path):
    server = tls_server(ASGI)
    body = bytes(range(256)) * 2048  # 512 KiB: many TLS records each way
    (tmp_path / "body").write_bytes(body)
    done = _curl("--cacert", str(tls_files.ca_pem), "--data-binary", f"@{tmp_path / 'body'}",
                 "-H", "Content-Type: application/octet-stream",
                 f"https://127.0.0.1:{server.port}/echo")
    assert done.returncode == 0, done.stderr
    assert done.stdout == body


def test_curl_refuses_a_server_it_does_not_trust(tls_server):
    # The control for the tests above: without --cacert, curl does not trust the test CA.
    server = tls_server(ASGI)
    done = _curl(f"https://127.0.0.1:{server.port}/")
    assert done.returncode == 60, (done.returncode, done.stderr)  # peer certificate not verified


# ------------------------------------------------------------------ openssl s_client
def _s_client(server, *args: str, files: TLSFiles | None = None) -> str:
    openssl = require_tool("openssl")
    command = [openssl, "s_client", "-connect", f"127.0.0.1:{server.port}",
               "-servername", "localhost", *args]
    if files is not None:
        command += ["-CAfile", str(files.ca_pem)]
    done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=20)
    return done.stdout + done.stderr


def _negotiated(output: str) -> str | None:
    """The protocol s_client settled on, or None when the handshake failed."""
    match = re.search(r"^New, (TLSv1\.\d|SSLv3), Cipher is (\S+)", output, re.M)
    if match is None or match.group(2) == "(NONE)":
        return None
    # "New, ..." names the suite's version (TLSv1.0 for a TLS 1.1 session's suite); the
    # session block, when printed (not for TLS 1.3 here), names the protocol's.
    session = re.search(r"^\s+Protocol\s+: (\S+)", output, re.M)
    return session.group(1) if session else match.group(1)


@pytest.mark.parametrize("flag, version", [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")])
def test_openssl_tls12_and_tls13_accepted(tls_server, tls_files, flag, version):
    server = tls_server(ASGI)
    output = _s_client(server, flag, files=tls_files)
    assert _negotiated(output) == version, output
    assert "Verify return code: 0 (ok)" in output


class _OldTLSServer:
    """A Python TLS server that accepts TLS 1.0 and 1.1 (the control: it shows the local
    OpenSSL client can offer them, so Gannet's refusal is Gannet's)."""

    def __init__(self, files: TLSFiles) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with warnings.catch_warnings():  # TLSVersion.TLSv1 is deprecated: that is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        context.load_cert_chain(str(files.cert), str(files.key))
        self.context = context
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(15)
        self.port = self.listener.getsockname()[1]
        self.versions: list[str | None] = []
        self.thread = threading.Thread(target=self._serve_one, daemon=True)
        self.thread.start()

    def _serve_one(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(10)
            try:
                with self.context.wrap_socket(conn, server_side=True) as tls:
                    self.versions.append(tls.version())
            except (ssl.SSLError, OSError):
                self.versions.append(None)

    def close(self) -> None:
        self.listener.close()
        self.thread.join(timeout=15)


@pytest.mark.parametrize("flag, version, python_name",
                         [("-tls1", "TLSv1", "TLSv1"), ("-tls1_1", "TLSv1.1", "TLSv1.1")])
def test_openssl_tls10_and_tls11_refused(tls_server, tls_files, flag, version, python_name):
    # The local OpenSSL client needs security level 0 to offer TLS 1.0/1.1 at all (Debian
    # 12's OpenSSL 3.0: with the default level it refuses to try). The control shows it
    # then can; if it cannot, there is nothing to test here.
    control = _OldTLSServer(tls_files)
    try:
        openssl = require_tool("openssl")
        done = subprocess.run([openssl, "s_client", "-connect", f"127.0.0.1:{control.port}",
                               flag, "-cipher", "DEFAULT:@SECLEVEL=0"],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
    finally:
        control.close()
    if _negotiated(done.stdout) != version:
        pytest.skip(f"the local OpenSSL client cannot offer {version}:\n{done.stdout}{done.stderr}")
    assert control.versions == [python_name]

    server = tls_server(ASGI, "--log-level", "debug")
    output = _s_client(server, flag, "-cipher", "DEFAULT:@SECLEVEL=0", files=tls_files)
    assert _negotiated(output) is None, output
    server.wait_for_log(r"TLS handshake failed: UNSUPPORTED_PROTOCOL")
    assert "Traceback" not in server.log and "[ERROR]" not in server.log


def test_openssl_alpn_http11_selected_when_offered(tls_server, tls_files):
    server = tls_server(ASGI)
    output = _s_client(server, "-alpn", "h2,http/1.1", files=tls_files)
    assert _negotiated(output) is not None, output
    assert "ALPN protocol: http/1.1" in output, output
    output = _s_client(server, "-alpn", "http/1.1", files=tls_files)
    assert "ALPN protocol: http/1.1" in output, output


def test_openssl_no_alpn_when_none_offered(tls_server, tls_files):
    server = tls_server(ASGI)
    output = _s_client(server, files=tls_files)
    assert _negotiated(output) is not None, output
    assert "No ALPN negotiated" in output, output


def test_alpn_h2_only_is_not_selected(tls_server, tls_files):
    # A client offering only h2 gets no ALPN (Gannet speaks HTTP/1.1 only) rather than a
    # protocol it did not offer; the connection then serves HTTP/1.1.
    server = tls_server(ASGI)
    context = client_context(tls_files, alpn=["h2"])
    with context.wrap_socket(socket.create_connection((server.host, server.port), timeout=5),
                             server_hostname="localhost") as sock:
        assert sock.selected_alpn_protocol() is None
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"hello over tls")


def test_min_version_tls13_refuses_tls12(tls_server, tls_files):
    server = tls_server(ASGI, "--ssl-min-version", "TLSv1.3", "--log-level", "debug")
    output = _s_client(server, "-tls1_2", files=tls_files)
    assert _negotiated(output) is None, output
    server.wait_for_log(r"TLS handshake failed: UNSUPPORTED_PROTOCOL")
    output = _s_client(server, "-tls1_3", files=tls_files)
    assert _negotiated(output) == "TLSv1.3", output
    # and Python's client, capped at 1.2, is refused too
    context = client_context(tls_files, maximum=ssl.TLSVersion.TLSv1_2)
    with pytest.raises(ssl.SSLError):
        with context.wrap_socket(socket.create_connection((server.host, server.port), timeout=5),
                                 server_hostname="localhost"):
            pass
    assert "Traceback" not in server.log and "[ERROR]" not in server.log


# ------------------------------------------------------------------ httpx
def test_httpx_asgi_scope_scheme_https(tls_server, tls_files):
    server = tls_server(ASGI)
    with httpx.Client(verify=client_context(tls_files), timeout=10) as client:
        response = client.get(f"https://127.0.0.1:{server.port}/scope")
        assert response.status_code == 200
        scope = response.json()
        assert scope["scheme"] == "https"
        assert scope["server"] == ["127.0.0.1", server.port]
        assert scope["client"][0] == "127.0.0.1"
        body = b"posted over tls " * 1000
        response = client.post(f"https://127.0.0.1:{server.port}/echo", content=body)
        assert response.content == body
        # keep-alive over the same TLS connection: several requests, one handshake
        for i in range(5):
            assert client.get(f"https://127.0.0.1:{server.port}/").text == "hello over tls"


def test_httpx_wsgi_url_scheme_https(tls_server, tls_files):
    server = tls_server(WSGI)
    with httpx.Client(verify=client_context(tls_files), timeout=10) as client:
        response = client.post(f"https://127.0.0.1:{server.port}/anything", content=b"x" * 70000)
        assert response.status_code == 200
        environ = response.json()
        assert environ["wsgi.url_scheme"] == "https"
        assert environ["REQUEST_METHOD"] == "POST"
        assert environ["body_length"] == 70000
        assert environ["SERVER_PORT"] == str(server.port)


def test_plain_server_still_says_http(tls_server, tls_files):
    # The control for the scheme tests: the same app without TLS sees http.
    server = tls_server(ASGI, tls=False)
    assert server.url.startswith("http://")
    response = httpx.get(f"http://127.0.0.1:{server.port}/scope", timeout=10)
    assert response.json()["scheme"] == "http"


# ------------------------------------------------------------------ websockets over wss://
def test_websockets_client_over_wss(tls_server, tls_files):
    server = tls_server(ASGI)
    with ws_connect(f"wss://127.0.0.1:{server.port}/ws", ssl=client_context(tls_files),
                    open_timeout=10) as ws:
        first = json.loads(ws.recv(timeout=5))
        assert first["scheme"] == "wss"
        ws.send("hello over wss")
        assert ws.recv(timeout=5) == "hello over wss"
        big = bytes(range(256)) * 1024
        ws.send(big)
        assert ws.recv(timeout=5) == big


# ------------------------------------------------------------------ headless Chromium
def _home_trusting(ca_pem, home) -> dict:
    """An environment whose HOME holds an NSS database (where Chromium on Linux reads its
    trust) that trusts the test CA for TLS servers: the test CA is trusted, nothing is
    ignored, and no root is needed."""
    certutil = require_tool("certutil")  # Debian: libnss3-tools
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    subprocess.run([certutil, "-d", f"sql:{nssdb}", "-N", "--empty-password"], check=True,
                   capture_output=True, timeout=30)
    subprocess.run([certutil, "-d", f"sql:{nssdb}", "-A", "-t", "C,,", "-n", "gannet-test-ca",
                    "-i", str(ca_pem)], check=True, capture_output=True, timeout=30)
    return dict(os.environ, HOME=str(home))


def _chromium(chromium: str, profile, url: str, *extra: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", *extra, url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


def test_chromium_page_over_https_opens_wss(tls_server, tls_files, tmp_path):
    """The page comes over https:// and its script echoes over wss://; the certificate is
    trusted through the test CA (trustme's, in an NSS database under the browser's HOME),
    not by ignoring certificate errors. The script reports over HTTPS and we wait for that
    report in the server's log."""
    chromium = require_tool("chromium")
    env = _home_trusting(tls_files.ca_pem, tmp_path / "home")
    server = tls_server(ASGI)
    browser = _chromium(chromium, tmp_path / "profile", f"https://localhost:{server.port}/page",
                        "--host-resolver-rules=MAP localhost 127.0.0.1", env=env)
    try:
        match = server.wait_for_log(r"PAGE REPORT (.*)", timeout=60)
    finally:
        browser.kill()
        browser.wait(timeout=10)
    assert match.group(1).strip() == ("RESULT page=https: scheme=wss "
                                      "echo=hello from chromium over wss"), server.log


def test_chromium_without_the_test_ca_does_not_load_the_page(tls_server, tls_files, tmp_path):
    # The control: without the test CA in its trust store Chromium refuses the certificate, the page's
    # script never runs, and its report never comes; Chromium's own handshake is aborted by
    # the browser, which Gannet logs as a failed handshake (debug), nothing louder.
    chromium = require_tool("chromium")
    server = tls_server(ASGI, "--log-level", "debug")
    browser = _chromium(chromium, tmp_path / "profile", f"https://127.0.0.1:{server.port}/page")
    try:
        server.wait_for_log(r"TLS handshake failed", timeout=60)
    finally:
        browser.kill()
        browser.wait(timeout=10)
    assert "PAGE REPORT" not in server.log
    assert "Traceback" not in server.log and "[ERROR]" not in server.log
