"""Shared TLS fixtures: a test CA (trustme), certificates in temp files, Gannet with TLS.

Fixtures
- ``tls_ca`` (session): a ``trustme.CA`` (ECDSA P-256, as trustme makes by default).
- ``tls_files``: a ``TLSFiles`` in ``tmp_path``: ``ca_pem`` (the CA's certificate, what
  clients trust), the server's ``cert`` (chain, leaf first) and ``key``, ``combined``
  (certificate and key in one file), and a client certificate for mTLS (``client_cert``,
  ``client_key``, ``client_pem`` = both in one file), issued by the same CA. The server
  certificate names ``localhost``, ``127.0.0.1`` and ``::1``.
- ``tls_server``: like ``gannet_server``, with ``--ssl-certfile``/``--ssl-keyfile`` of
  ``tls_files`` added: ``server = tls_server("tls_clients_apps:asgi_app", "-w", "1")``;
  ``server.host``/``server.port`` come from the "Listening on https://..." line, and
  ``server.url`` starts with ``https://``. Pass ``certfile=``/``keyfile=`` to use other
  files (``keyfile=None`` leaves it out), ``tls=False`` for a plain server.

Helpers (``from tls.conftest import ...``; this directory is a package, see __init__.py)
- ``client_context(files, alpn=..., client_cert=..., minimum=..., maximum=...)``: an
  ``ssl.SSLContext`` trusting the test CA.
- ``tls_connect(server, context)``: a connected, handshaken ``ssl.SSLSocket``.
- ``https_request(server, context, raw_request)``: send one request, read to EOF.
- ``client_hello(minimum=, maximum=, alpn=)``: the bytes of a real ClientHello.
- ``run_gannet(app, *args)``: run Gannet to completion (start-up checks): returncode, output.
- ``gannet_env()``: the environment ``start_server`` gives Gannet.
"""
from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from conftest import APPS, ROOT, RunningServer, start_server

SERVER_IDENTITIES = ("localhost", "127.0.0.1", "::1")


@dataclass
class TLSFiles:
    dir: Path
    ca: trustme.CA
    ca_pem: Path
    cert: Path
    key: Path
    combined: Path
    client_cert: Path
    client_key: Path
    client_pem: Path
    leaf: trustme.LeafCert = field(repr=False)

    @property
    def serial(self) -> int:
        """Serial number of the server certificate now in ``cert``."""
        return serial_of_pem(self.cert.read_bytes())

    def issue(self, stem: str, *identities: str,
              key_type: trustme.KeyType = trustme.KeyType.ECDSA) -> tuple[Path, Path]:
        """A new certificate from the test CA, written to ``<stem>.pem``/``<stem>.key``."""
        leaf = self.ca.issue_cert(*(identities or SERVER_IDENTITIES), key_type=key_type)
        cert, key = self.dir / f"{stem}.pem", self.dir / f"{stem}.key"
        _write_chain(leaf, cert)
        leaf.private_key_pem.write_to_path(key)
        return cert, key

    def replace_server_cert(self) -> int:
        """Replace ``cert`` and ``key`` in place (each an atomic rename) with a new
        certificate from the same CA; returns its serial number."""
        leaf = self.ca.issue_cert(*SERVER_IDENTITIES)
        tmp_cert, tmp_key = self.dir / "new-cert.tmp", self.dir / "new-key.tmp"
        _write_chain(leaf, tmp_cert)
        leaf.private_key_pem.write_to_path(tmp_key)
        # Key first: a worker reading between the two renames sees a mismatch either way,
        # but the test sends HUP only after both.
        os.replace(tmp_key, self.key)
        os.replace(tmp_cert, self.cert)
        self.leaf = leaf
        return serial_of_pem(leaf.cert_chain_pems[0].bytes())

    def encrypted_key(self, password: str) -> Path:
        """The server key, encrypted with ``password`` (PKCS#8 PEM)."""
        key = serialization.load_pem_private_key(self.key.read_bytes(), password=None)
        path = self.dir / "server-encrypted.key"
        path.write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(password.encode())))
        return path

    def der_cert(self) -> Path:
        """The server certificate in DER (not PEM)."""
        cert = x509.load_pem_x509_certificate(self.cert.read_bytes())
        path = self.dir / "server.der"
        path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
        return path

    def server_args(self) -> list[str]:
        return ["--ssl-certfile", str(self.cert), "--ssl-keyfile", str(self.key)]


def _write_chain(leaf: trustme.LeafCert, path: Path) -> None:
    path.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))


def serial_of_pem(pem: bytes) -> int:
    return x509.load_pem_x509_certificate(pem).serial_number


def serial_of_der(der: bytes) -> int:
    return x509.load_der_x509_certificate(der).serial_number


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    return trustme.CA(organization_name="Gannet test CA")


@pytest.fixture
def tls_files(tls_ca: trustme.CA, tmp_path: Path) -> TLSFiles:
    directory = tmp_path / "tls"
    directory.mkdir()
    ca_pem = directory / "ca.pem"
    tls_ca.cert_pem.write_to_path(ca_pem)
    leaf = tls_ca.issue_cert(*SERVER_IDENTITIES)
    cert, key, combined = directory / "server.pem", directory / "server.key", directory / "server-combined.pem"
    _write_chain(leaf, cert)
    leaf.private_key_pem.write_to_path(key)
    leaf.private_key_and_cert_chain_pem.write_to_path(combined)
    client = tls_ca.issue_cert("client@example.test", common_name="gannet test client")
    client_cert, client_key, client_pem = (directory / "client.pem", directory / "client.key",
                                           directory / "client-combined.pem")
    _write_chain(client, client_cert)
    client.private_key_pem.write_to_path(client_key)
    client.private_key_and_cert_chain_pem.write_to_path(client_pem)
    return TLSFiles(directory, tls_ca, ca_pem, cert, key, combined, client_cert, client_key,
                    client_pem, leaf)


@pytest.fixture
def tls_server(gannet_server, tls_files: TLSFiles):
    """Factory: ``tls_server(app, *args, certfile=..., keyfile=..., tls=True, **kwargs)``."""
    unset = object()

    def factory(app: str, *args: str, certfile: object = unset, keyfile: object = unset,
                tls: bool = True, **kwargs) -> RunningServer:
        extra: list[str] = []
        if tls:
            cert = tls_files.cert if certfile is unset else certfile
            key = tls_files.key if keyfile is unset else keyfile
            extra += ["--ssl-certfile", str(cert)]
            if key is not None:
                extra += ["--ssl-keyfile", str(key)]
        server = gannet_server(app, "--host", "127.0.0.1", *extra, *args, **kwargs)
        if tls:
            assert server.url.startswith("https://"), server.url
        return server

    return factory


# ---------------------------------------------------------------------------- helpers
def client_context(files: TLSFiles, *, alpn: list[str] | None = None, client_cert: bool = False,
                   minimum: ssl.TLSVersion | None = None,
                   maximum: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(files.ca_pem))
    if alpn:
        context.set_alpn_protocols(alpn)
    if client_cert:
        context.load_cert_chain(str(files.client_cert), str(files.client_key))
    if minimum is not None:
        context.minimum_version = minimum
    if maximum is not None:
        context.maximum_version = maximum
    return context


def tls_connect(server: RunningServer, context: ssl.SSLContext, *, timeout: float = 5.0,
                server_hostname: str = "localhost") -> ssl.SSLSocket:
    raw = socket.create_connection((server.host, server.port), timeout=timeout)
    try:
        return context.wrap_socket(raw, server_hostname=server_hostname)
    except BaseException:
        raw.close()
        raise


def https_request(server: RunningServer, context: ssl.SSLContext, request: bytes,
                  timeout: float = 5.0) -> bytes:
    """Send ``request`` over TLS and read until the server closes (send
    ``Connection: close``); a missing close_notify at the end is tolerated."""
    with tls_connect(server, context, timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (ssl.SSLEOFError, ConnectionResetError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def client_hello(*, minimum: ssl.TLSVersion | None = None, maximum: ssl.TLSVersion | None = None,
                 alpn: list[str] | None = None, server_hostname: str = "localhost") -> bytes:
    """The bytes of a real ClientHello (one TLS record) from Python's OpenSSL, for tests
    that send it raw: split, after a PROXY header, or with a version Gannet refuses (below
    TLS 1.2 the client needs OpenSSL's security level 0 to offer it at all)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if minimum is not None:
        context.minimum_version = minimum
    if maximum is not None:
        context.maximum_version = maximum
        if maximum < ssl.TLSVersion.TLSv1_2:
            context.set_ciphers("DEFAULT:@SECLEVEL=0")
    if alpn:
        context.set_alpn_protocols(alpn)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=server_hostname)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outgoing.read()
    assert hello[:1] == b"\x16", hello[:16]
    return hello


def gannet_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(APPS), str(ROOT / "src"), env.get("PYTHONPATH", "")])
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def run_gannet(app: str, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
    """Run ``python -m gannet APP --host 127.0.0.1 --port 0 ARGS`` to completion (for
    start-up checks that must exit); stdout and stderr together in ``.stdout``."""
    command = [sys.executable, "-m", "gannet", app, "--host", "127.0.0.1", "--port", "0", *args]
    return subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=gannet_env(), cwd=str(APPS), timeout=timeout)


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy (returned) or the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        time.sleep(interval)


__all__ = ["TLSFiles", "client_context", "client_hello", "tls_connect", "https_request", "gannet_env",
           "run_gannet", "wait_until", "serial_of_pem", "serial_of_der", "start_server",
           "SERVER_IDENTITIES"]
