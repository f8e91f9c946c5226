"""What a TLS connection tells the app: the ASGI ``tls`` extension and mod_ssl's SSL_* keys.

Theory of operation. A connection that arrived through Gannet's own TLS (server/tls.py
hands the protocol a transport whose handshake is done, directly or behind a PROXY
header) gets one ``ConnectionTLS`` when it opens (``connection_tls``); a plain connection
gets None, and h1 pays one attribute test per request for it. Nothing is read from the
TLS layer until the connection's first request (``add_to``), and then everything is read
once, on the loop's thread: version, cipher, whether the session was resumed, and the
client's certificate. Renegotiation is off (config/tls.py), so these cannot change for
the life of the connection.

ASGI (the TLS extension, asgiref specs/tls.rst, version 0.2): each request's scope gets
``extensions["tls"]``, a fresh dict per request (an app or a middleware may set a field:
the spec itself foresees fields filled from elsewhere behind a proxy), whose values are
immutable and shared by the connection's requests (str, int, None, and a tuple for the
chain). Nothing is added on a plain connection, as the spec requires; TLS ended by a
proxy in front (X-Forwarded-Proto, a PROXY v2 SSL TLV) is not Gannet's TLS either.

- ``server_cert``: the PEM of the first certificate in --ssl-certfile (the one the
  handshake sent; Python's ssl cannot say which certificate its own side sent), read once
  per worker.
- ``client_cert_chain``: a tuple of PEM strings, the client's certificate first. With
  Python 3.13+ (``SSLObject.get_verified_chain``) it is the chain OpenSSL verified, from
  the client's certificate up to the trust anchor in --ssl-ca-certs; before 3.13 Python
  gives only the client's own certificate, so the tuple holds just that one. Empty
  without a client certificate.
- ``client_cert_name``: the subject's DN as RFC 4514 (see ``dn_string``), or None.
- ``client_cert_error``: always None. With --ssl-cert-reqs optional or required OpenSSL
  verifies a certificate the client sends during the handshake and fails the handshake
  if it does not verify (Python's ssl has no verify callback to let it through), so no
  request ever carries an unverified certificate; with none no certificate is asked for.
- ``tls_version``: 0x0303 (TLS 1.2) or 0x0304 (TLS 1.3).
- ``cipher_suite``: the IANA 16-bit id, from OpenSSL's own table (the low 16 bits of
  ``SSLContext.get_ciphers()``'s ``id``), TLS 1.3 suites included.

WSGI: the keys Apache's mod_ssl gives (``SSLOptions +StdEnvVars +ExportCertData``), as
mod_wsgi apps see them: HTTPS, SSL_PROTOCOL, SSL_CIPHER(_USEKEYSIZE, _ALGKEYSIZE),
SSL_SESSION_RESUMED, SSL_CLIENT_VERIFY (SUCCESS or NONE; mod_ssl's FAILED:reason cannot
happen, as above) and, with a client certificate, SSL_CLIENT_CERT, SSL_CLIENT_CERT_CHAIN_n
(3.13+: the verified chain past the client's certificate), SSL_CLIENT_S_DN / _I_DN,
SSL_CLIENT_S_DN_x / _I_DN_x (CN, O, OU... as mod_ssl names them; a repeated one is x_1,
x_2...), SSL_CLIENT_M_SERIAL, SSL_CLIENT_M_VERSION, SSL_CLIENT_V_START / _V_END. The
values are OpenSSL's own renderings, as mod_ssl's are (the serial in hex, dates as
``Jun  1 12:00:00 2026 GMT``), and, like every environ string, bytes-as-str (the UTF-8 of
a DN read as latin-1). A WSGI request's scope is internal, so it carries this object
under ``extensions["tls"]`` (wsgi/environ.py adds the keys) instead of a dict per request.

h2 (and h3) serve requests from the same connections: they call ``add_to`` the same way.
"""
from __future__ import annotations

import re
import ssl
from typing import Any

from .request import ExtensionParams

__all__ = ["TLS_VERSIONS", "ConnectionTLS", "cipher_suite_id", "connection_tls", "dn_string"]

# SSLObject.version() -> the protocol version number on the wire (RFC 8446 §4.2.1).
TLS_VERSIONS = {"TLSv1.3": 0x0304, "TLSv1.2": 0x0303, "TLSv1.1": 0x0302, "TLSv1": 0x0301,
                "SSLv3": 0x0300}

# OpenSSL cipher name -> (IANA id, algorithm key bits), filled from the contexts in use.
_CIPHERS: dict[str, tuple[int, int]] = {}

# The PEM of each server context's certificate, read once per context (so per worker).


def connection_tls(transport: Any) -> ConnectionTLS | None:
    """The TLS facts of a connection whose transport is TLS, else None."""
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    return ConnectionTLS(ssl_object)


class ConnectionTLS:
    """One TLS connection's facts, read at its first request and shared by all of them."""

    __slots__ = (
        "chain",
        "cipher",
        "environ_keys",
        "extension",
        "peer",
        "resumed",
        "ssl_object",
        "version",
        "wsgi_extensions",
    )

    def __init__(self, ssl_object: Any) -> None:
        self.ssl_object = ssl_object
        self.extension: dict | None = None  # the ASGI extension's values (copied per request)
        self.environ_keys: dict | None = None  # the SSL_* keys (built on first WSGI use)
        self.wsgi_extensions: ExtensionParams | None = None
        self.version: str | None = None  # None until read
        self.cipher: tuple | None = None
        self.resumed = False
        self.chain: tuple[str, ...] = ()
        self.peer: dict = {}  # getpeercert()'s decoded certificate, {} without one

    def add_to(self, scope: dict, asgi: bool) -> None:
        """Give one request's scope this connection's TLS facts (on the loop's thread)."""
        if self.version is None:
            self._read()
        if asgi:
            extension = self.extension
            if extension is None:
                extension = self.extension = self._extension()
            scope["extensions"]["tls"] = extension.copy()  # the app may change its own
        else:
            # A WSGI request's scope (and its shared, read-only extensions) is internal:
            # the environ builder takes the keys from this object.
            extensions = self.wsgi_extensions
            if extensions is None:
                extensions = self.wsgi_extensions = ExtensionParams(tls=self)
            scope["extensions"] = extensions

    # ------------------------------------------------------------------ reading
    def _read(self) -> None:
        ssl_object = self.ssl_object
        self.cipher = ssl_object.cipher()
        self.resumed = bool(ssl_object.session_reused)
        leaf = ssl_object.getpeercert(binary_form=True)
        if leaf:
            self.peer = ssl_object.getpeercert() or {}
            self.chain = _client_chain(ssl_object, leaf)
        self.version = ssl_object.version() or ""

    def _extension(self) -> dict:
        cipher = self.cipher
        subject = self.peer.get("subject")
        return {
            "server_cert": server_cert_pem(self.ssl_object.context),
            "client_cert_chain": self.chain,
            "client_cert_name": dn_string(subject) if subject is not None else None,
            "client_cert_error": None,  # see the module's doc: never observable
            "tls_version": TLS_VERSIONS.get(self.version or ""),
            "cipher_suite": cipher_suite_id(cipher[0], self.ssl_object.context) if cipher else None,
        }

    def environ(self) -> dict:
        """The mod_ssl keys of this connection (shared: the caller copies them in)."""
        keys = self.environ_keys
        if keys is None:
            keys = self.environ_keys = self._environ()
        return keys

    def _environ(self) -> dict:
        cipher = self.cipher
        keys = {"HTTPS": "on", "SSL_PROTOCOL": self.version or "",
                "SSL_SESSION_RESUMED": "Resumed" if self.resumed else "Initial"}
        if cipher:
            keys["SSL_CIPHER"] = cipher[0]
            keys["SSL_CIPHER_USEKEYSIZE"] = str(cipher[2])
            known = _cipher_facts(cipher[0], self.ssl_object.context)
            keys["SSL_CIPHER_ALGKEYSIZE"] = str(known[1] if known else cipher[2])
        if not self.chain:
            keys["SSL_CLIENT_VERIFY"] = "NONE"
            return keys
        peer = self.peer
        keys["SSL_CLIENT_VERIFY"] = "SUCCESS"
        keys["SSL_CLIENT_CERT"] = self.chain[0]
        for index, pem in enumerate(self.chain[1:]):
            keys[f"SSL_CLIENT_CERT_CHAIN_{index}"] = pem
        for which, field in (("S", "subject"), ("I", "issuer")):
            name = peer.get(field)
            if name is None:
                continue
            keys[f"SSL_CLIENT_{which}_DN"] = _native(dn_string(name))
            _dn_components(keys, f"SSL_CLIENT_{which}_DN_", name)
        for key, field in (("SSL_CLIENT_M_SERIAL", "serialNumber"),
                           ("SSL_CLIENT_M_VERSION", "version"),
                           ("SSL_CLIENT_V_START", "notBefore"), ("SSL_CLIENT_V_END", "notAfter")):
            value = peer.get(field)
            if value is not None:
                keys[key] = str(value)
        return keys


def _client_chain(ssl_object: Any, leaf: bytes) -> tuple[str, ...]:
    """The client's certificate first, then (Python 3.13+) the rest of the chain OpenSSL
    verified. A resumed session keeps the peer's certificate but not the verified chain
    (OpenSSL stores only the former in the session): then the tuple holds the leaf alone."""
    get_chain = getattr(ssl_object, "get_verified_chain", None)
    if get_chain is not None:
        try:
            chain = [cert.public_bytes() for cert in get_chain()]  # PEM by default
        except (ssl.SSLError, ValueError, TypeError):
            chain = []
        if chain and ssl.PEM_cert_to_DER_cert(chain[0].strip()) == leaf:
            return tuple(chain)
    return (ssl.DER_cert_to_PEM_cert(leaf),)


# ---------------------------------------------------------------- server certificate
def server_cert_pem(context: Any) -> str | None:
    """The PEM of the certificate this server sends: config/tls.py read it (the first in
    --ssl-certfile, the leaf) when it built the context, as the user Gannet started as."""
    return getattr(context, "gannet_server_cert", None)


# ---------------------------------------------------------------- cipher suites
def _cipher_facts(name: str, context: Any) -> tuple[int, int] | None:
    facts = _CIPHERS.get(name)
    if facts is None and context is not None:
        # The server's own context lists every suite it can negotiate, TLS 1.3's too.
        for cipher in context.get_ciphers():
            if "id" in cipher:
                _CIPHERS[cipher["name"]] = (cipher["id"] & 0xFFFF, cipher.get("alg_bits", 0))
        facts = _CIPHERS.get(name)
    return facts


def cipher_suite_id(name: str, context: Any = None) -> int | None:
    """The IANA id of an OpenSSL cipher name (``SSLObject.cipher()[0]``): OpenSSL's id is
    0x0300XXXX with the two IANA bytes at the bottom (TLS_AES_128_GCM_SHA256: 0x1301)."""
    if context is None and name not in _CIPHERS:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    facts = _cipher_facts(name, context)
    return facts[0] if facts else None


# ---------------------------------------------------------------- distinguished names
# RFC 4514 §3: the attribute types with registered short names. Other types take
# OpenSSL's short name (emailAddress, serialNumber, SN, GN, title...), as OpenSSL's
# RFC 2253 printing does (and so mod_ssl's SSL_CLIENT_S_DN and nginx's $ssl_client_s_dn).
_RFC4514_TYPES = {"commonName": "CN", "localityName": "L", "stateOrProvinceName": "ST",
                  "organizationName": "O", "organizationalUnitName": "OU", "countryName": "C",
                  "streetAddress": "STREET", "domainComponent": "DC", "userId": "UID"}
_TYPE_NAMES: dict[str, str] = {}
_NEEDS_ESCAPE = re.compile(r'[,+"\\<>;\x00-\x1f\x7f]|^[ #]| $')
# mod_ssl's SSL_*_DN_x component names (ssl_engine_vars.c), by Python's attribute name.
_MOD_SSL_COMPONENTS = {"countryName": "C", "stateOrProvinceName": "ST", "localityName": "L",
                       "organizationName": "O", "organizationalUnitName": "OU",
                       "commonName": "CN", "title": "T", "initials": "I", "givenName": "G",
                       "surname": "S", "description": "D", "userId": "UID",
                       "emailAddress": "Email"}


def dn_string(name: Any) -> str:
    """A DN as RFC 4514 writes it, from getpeercert()'s tuple of RDNs (each a tuple of
    (type, value) pairs, in the certificate's order: RFC 4514 §2.1 writes them last
    first). It is what OpenSSL prints with XN_FLAG_RFC2253 less ESC_MSB (mod_ssl's
    SSL_CLIENT_S_DN since Apache 2.3.11; ``openssl x509 -nameopt RFC2253,-esc_msb``):
    the values of a multi-valued RDN reversed too, '+' between them; ``, + " \\ < > ;``,
    a leading '#' or space and a trailing space escaped with a backslash, control
    characters as \\XX, and other characters, UTF-8 included, as they are. Two
    differences: streetAddress is RFC 4514's STREET (OpenSSL: street; types are
    case-insensitive), and a type OpenSSL has no name for is its dotted OID with the
    string value (OpenSSL dumps the value's DER as #hex)."""
    return ",".join("+".join(f"{_type_name(kind)}={_escape(value)}" for kind, value in reversed(rdn))
                    for rdn in reversed(name))


def _type_name(kind: str) -> str:
    short = _TYPE_NAMES.get(kind)
    if short is None:
        short = _RFC4514_TYPES.get(kind)
        if short is None:
            try:
                short = ssl._ASN1Object.fromname(kind).shortname  # OpenSSL's own table
            except (AttributeError, ValueError, TypeError):
                short = kind  # already a dotted OID
        if len(_TYPE_NAMES) < 256:
            _TYPE_NAMES[kind] = short
    return short


def _escape(value: str) -> str:
    if not _NEEDS_ESCAPE.search(value):
        return value
    out = []
    last = len(value) - 1
    for index, char in enumerate(value):
        if char in ',+"\\<>;' or (index == 0 and char in " #") or (index == last and char == " "):
            out.append("\\" + char)
        elif char < " " or char == "\x7f":
            out.append(f"\\{ord(char):02X}")
        else:
            out.append(char)
    return "".join(out)


def _dn_components(keys: dict, prefix: str, name: Any) -> None:
    """mod_ssl's SSL_CLIENT_S_DN_CN etc.: each attribute's value unescaped, in the
    certificate's order; the second of a kind is x_1, the third x_2 (extract_dn)."""
    seen: dict[str, int] = {}
    for rdn in name:
        for kind, value in rdn:
            tag = _MOD_SSL_COMPONENTS.get(kind)
            if tag is None:
                continue
            count = seen.get(tag)
            if count is None:
                seen[tag] = 0
                keys[prefix + tag] = _native(value)
            else:
                seen[tag] = count + 1
                keys[f"{prefix}{tag}_{count + 1}"] = _native(value)


def _native(text: str) -> str:
    """PEP 3333's bytes-as-str: the UTF-8 bytes read as latin-1 (ASCII is unchanged)."""
    return text if text.isascii() else text.encode("utf-8", "surrogateescape").decode("latin-1")
