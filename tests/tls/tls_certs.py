"""Certificates and clients for the TLS-extension and mTLS tests (test_tls_extension.py,
test_mtls.py). Kept out of conftest.py, which another part of the TLS tests owns: import
with ``from tls.tls_certs import ...``; the ``pki`` fixture is session-wide.

The PKI (trustme, plus cryptography for subjects trustme cannot make):
- ``ca``: the CA given to the server with --ssl-ca-certs; ``server.pem`` is issued by it
  for 127.0.0.1 and localhost (certificate and key in one file).
- ``alice``: a client certificate from ``ca``, with an email identity.
- ``bob``: a client certificate from an intermediate CA under ``ca``; its file carries
  the intermediate too, so the client sends the chain.
- ``mallory``: a client certificate from a CA the server does not trust.
- ``odd``: a client certificate from ``ca`` whose subject needs every escape RFC 4514 has,
  a multi-valued RDN, UTF-8, a control character and emailAddress.
- ``plain_odd``: one whose subject only uses RFC 4514's own attribute types (STREET and
  DC included), to compare with cryptography's RFC 4514 rendering.
"""
from __future__ import annotations

import datetime
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# RFC 8446 §B.4 and RFC 5289 / RFC 7905: the IANA ids of the suites these tests meet,
# written out here so the server's numbers are checked against the registry, not
# against the OpenSSL table the server itself reads.
IANA_SUITES = {
    "TLS_AES_128_GCM_SHA256": 0x1301,
    "TLS_AES_256_GCM_SHA384": 0x1302,
    "TLS_CHACHA20_POLY1305_SHA256": 0x1303,
    "ECDHE-ECDSA-AES128-GCM-SHA256": 0xC02B,
    "ECDHE-ECDSA-AES256-GCM-SHA384": 0xC02C,
    "ECDHE-ECDSA-CHACHA20-POLY1305": 0xCCA9,
}


@dataclass
class Client:
    """A client identity: the PEM file to load (certificate, chain, key) and its parts."""
    path: Path
    cert_pem: str  # the client's own certificate
    chain_pems: list[str]  # the certificates the client sends, its own first


@dataclass
class PKI:
    dir: Path
    ca_pem: Path
    ca_cert_pem: str
    server_pem: Path
    server_cert_pem: str
    alice: Client
    bob: Client
    intermediate_pem: str
    mallory: Client
    odd: Client
    plain_odd: Client

    def server_args(self, cert_reqs: str) -> tuple[str, ...]:
        return ("--ssl-certfile", str(self.server_pem), "--ssl-ca-certs", str(self.ca_pem),
                "--ssl-cert-reqs", cert_reqs)


def normalize_pem(pem: str) -> str:
    """One certificate in OpenSSL's PEM layout (64-column lines, final newline)."""
    return ssl.DER_cert_to_PEM_cert(ssl.PEM_cert_to_DER_cert(pem.strip()))


def _write_client(directory: Path, name: str, leaf: trustme.LeafCert) -> Client:
    path = directory / f"{name}.pem"
    leaf.private_key_and_cert_chain_pem.write_to_path(str(path))
    chain = [blob.bytes().decode() for blob in leaf.cert_chain_pems]
    return Client(path, normalize_pem(chain[0]), [normalize_pem(pem) for pem in chain])


def _custom_client(directory: Path, name: str, ca: trustme.CA, subject: x509.Name) -> Client:
    """A client certificate from ``ca`` with a subject trustme cannot express."""
    ca_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    path = directory / f"{name}.pem"
    path.write_text(key_pem + cert_pem)
    return Client(path, normalize_pem(cert_pem), [normalize_pem(cert_pem)])


ODD_SUBJECT = x509.Name([
    x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, "GB")]),
    x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, " Kent ")]),
    x509.RelativeDistinguishedName([x509.NameAttribute(
        NameOID.ORGANIZATION_NAME, 'Example, Inc. + "Friends" <a;b> back\\slash =eq')]),
    x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "#hash")]),
    x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "tab\there")]),
    x509.RelativeDistinguishedName([
        x509.NameAttribute(NameOID.COMMON_NAME, "Zoë Ünïcode"),
        x509.NameAttribute(NameOID.USER_ID, "u42"),
    ]),
    x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.EMAIL_ADDRESS, "zoe@example.com")]),
])

PLAIN_ODD_SUBJECT = x509.Name([
    x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "org"),
    x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "example"),
    x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
    x509.NameAttribute(NameOID.LOCALITY_NAME, "São Paulo"),
    x509.NameAttribute(NameOID.STREET_ADDRESS, "1 Main St, Suite #2 "),
    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "A+B; <C>"),
    x509.NameAttribute(NameOID.USER_ID, "#7"),
    x509.NameAttribute(NameOID.COMMON_NAME, 'Dr. "Quote" \\ Backslash'),
])


def make_pki(directory: Path) -> PKI:
    ca = trustme.CA(organization_name="Gannet Test CA")
    ca_pem = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    server = ca.issue_cert("127.0.0.1", "localhost")
    server_pem = directory / "server.pem"
    server.private_key_and_cert_chain_pem.write_to_path(str(server_pem))
    alice = _write_client(directory, "alice", ca.issue_cert(
        "alice@example.com", common_name="alice", organization_name="Example, Inc.",
        organization_unit_name="Clients"))
    intermediate = ca.create_child_ca()
    bob = _write_client(directory, "bob", intermediate.issue_cert(
        "bob@example.com", common_name="bob"))
    other_ca = trustme.CA(organization_name="Somebody Else")
    mallory = _write_client(directory, "mallory", other_ca.issue_cert(
        "mallory@example.com", common_name="mallory"))
    return PKI(
        dir=directory, ca_pem=ca_pem, ca_cert_pem=normalize_pem(ca.cert_pem.bytes().decode()),
        server_pem=server_pem,
        server_cert_pem=normalize_pem(server.cert_chain_pems[0].bytes().decode()),
        alice=alice, bob=bob, intermediate_pem=normalize_pem(intermediate.cert_pem.bytes().decode()),
        mallory=mallory, odd=_custom_client(directory, "odd", ca, ODD_SUBJECT),
        plain_odd=_custom_client(directory, "plain_odd", ca, PLAIN_ODD_SUBJECT))


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("tls-pki"))


def client_context(pki: PKI, client: Client | None = None, *,
                   max_version: ssl.TLSVersion | None = None,
                   ciphers: str | None = None) -> ssl.SSLContext:
    """A client context that trusts the test CA and (optionally) presents ``client``."""
    context = ssl.create_default_context(cafile=str(pki.ca_pem))
    if client is not None:
        context.load_cert_chain(str(client.path))
    if max_version is not None:
        context.maximum_version = max_version
    if ciphers is not None:
        context.set_ciphers(ciphers)
    return context


def expected_chain(pki: PKI, client: Client) -> list[str]:
    """client_cert_chain as docs/tls.md says: on Python 3.13+ the chain OpenSSL verified
    (what the client sent, then the CA from --ssl-ca-certs); before, the client's own
    certificate alone (Python's ssl gives nothing more)."""
    if hasattr(ssl.SSLObject, "get_verified_chain"):
        return [*client.chain_pems, pki.ca_cert_pem]
    return [client.cert_pem]


def openssl_x509(pem_path_or_text: Any, *args: str) -> str:
    """``openssl x509 -noout ARGS`` on one certificate; its output without the newline."""
    text = pem_path_or_text if isinstance(pem_path_or_text, str) else Path(pem_path_or_text).read_text()
    result = subprocess.run(["openssl", "x509", "-noout", *args], input=text.encode(),
                            capture_output=True, check=True, timeout=30)
    return result.stdout.decode("utf-8").rstrip("\n")
