"""TLS: the SSLContext every TLS listener shares, secure by default, checked at start-up.

Defaults follow Mozilla's "intermediate" server profile (Server Side TLS, v5): TLS 1.2
and 1.3 only; for TLS 1.2 the ECDHE (and DHE) suites with AES-GCM or ChaCha20-Poly1305,
so every suite has forward secrecy and an AEAD cipher; the client's order of preference
(all suites on the list are strong); no compression (CRIME) and no renegotiation
(client-initiated renegotiation is a cheap denial of service). Resumption keeps OpenSSL's
defaults: stateless session tickets (TLS 1.2 and 1.3), with keys rotated per process.
TLS 1.3's own suites are OpenSSL's (all three are in the profile).

The context is built where it is used: in each worker (so a HUP, which replaces the
workers, reloads the certificate and key), and once in the master or single process
before anything is served, so a missing file, a wrong password or a key that does not
match the certificate stops the start with exit status 2 and one line saying which.

ALPN offers ``http/1.1``; HTTP/2 adds ``h2`` in front of it (server/tls.py chooses the
protocol per connection from what was negotiated).
"""
from __future__ import annotations

import os
import re
import ssl
import stat
from typing import Any

from .config import ConfigError
from .settings import INTERMEDIATE_CIPHERS

__all__ = ["INTERMEDIATE_CIPHERS", "ALPN_PROTOCOLS", "TLSConfigError", "tls_enabled",
           "make_context", "prepare_context", "context_for", "CERT_REQS", "MIN_VERSIONS"]

ALPN_PROTOCOLS = ["http/1.1"]
CERT_REQS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}
MIN_VERSIONS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}


class TLSConfigError(ConfigError):
    """A certificate, key or TLS option that cannot be used; one line naming it."""


def tls_enabled(config: Any) -> bool:
    return bool(getattr(config, "ssl_certfile", None))


def make_context(config: Any) -> ssl.SSLContext:
    """The server context for ``config``'s TLS options; raises TLSConfigError."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = MIN_VERSIONS[config.ssl_min_version]
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE  # the profile: the client's order
    try:
        context.set_ciphers(config.ssl_ciphers)
    except ssl.SSLError:
        raise TLSConfigError(f"--ssl-ciphers: OpenSSL accepts none of {config.ssl_ciphers!r}") from None
    _load_chain(context, config)
    if config.ssl_ca_certs:
        _readable("--ssl-ca-certs", config.ssl_ca_certs)
        try:
            context.load_verify_locations(cafile=config.ssl_ca_certs)
        except ssl.SSLError as exc:
            raise TLSConfigError(f"--ssl-ca-certs {config.ssl_ca_certs}: no CA certificate "
                                 f"could be read from it ({_reason(exc)})") from None
    context.verify_mode = CERT_REQS[config.ssl_cert_reqs]
    if context.verify_mode != ssl.CERT_NONE and not config.ssl_ca_certs:
        raise TLSConfigError(f"--ssl-cert-reqs {config.ssl_cert_reqs}: client certificates "
                             "are checked against --ssl-ca-certs, which is not set")
    context.set_alpn_protocols(ALPN_PROTOCOLS)
    # The certificate the ASGI tls extension reports, read now: a worker that switched
    # to --user may not be able to open the file any more (Let's Encrypt's layout).
    context.gannet_server_cert = _first_certificate(config.ssl_certfile)  # type: ignore[attr-defined]
    return context


# The context built before the process gave up root (prepare_context), for the workers
# (forked from it) and the single process (after its --user switch) to use: the files may
# be readable by root only, as nginx and Apache expect. Keyed by the options it was built
# from, so a Config with other TLS settings never gets it.
_prepared: tuple[tuple, ssl.SSLContext] | None = None


def _key(config: Any) -> tuple:
    return tuple(getattr(config, name) for name in (
        "ssl_certfile", "ssl_keyfile", "ssl_keyfile_password", "ssl_ca_certs",
        "ssl_cert_reqs", "ssl_ciphers", "ssl_min_version"))


def prepare_context(config: Any) -> ssl.SSLContext:
    """Build (again: a HUP re-reads the files) and keep the context for this process and
    the workers it forks; raises TLSConfigError."""
    global _prepared
    context = make_context(config)
    _prepared = (_key(config), context)
    return context


def context_for(config: Any) -> ssl.SSLContext:
    """The prepared context when there is one for these options, else a new one."""
    if _prepared is not None and _prepared[0] == _key(config):
        return _prepared[1]
    return make_context(config)


def _first_certificate(certfile: str) -> str | None:
    """The first certificate of the PEM file, in OpenSSL's PEM layout (None if unreadable:
    load_cert_chain has read it already, so that does not happen in practice)."""
    try:
        with open(certfile, "rb") as handle:
            text = handle.read().decode("ascii", "replace")
    except OSError:
        return None
    begin = text.find("-----BEGIN CERTIFICATE-----")
    end = text.find("-----END CERTIFICATE-----", begin)
    if begin < 0 or end < 0:
        return None
    try:
        block = text[begin:end + len("-----END CERTIFICATE-----")]
        return ssl.DER_cert_to_PEM_cert(ssl.PEM_cert_to_DER_cert(block))
    except ValueError:
        return None


def _load_chain(context: ssl.SSLContext, config: Any) -> None:
    certfile = config.ssl_certfile
    keyfile = config.ssl_keyfile or None
    _readable("--ssl-certfile", certfile)
    if keyfile:
        _readable("--ssl-keyfile", keyfile)
    password = config.ssl_keyfile_password
    asked = []

    def give_password() -> bytes:
        asked.append(True)
        if password is None:
            raise TLSConfigError(f"--ssl-keyfile {keyfile or certfile}: the key is encrypted; "
                                 "give its password with --ssl-keyfile-password")
        return password.encode("utf-8")

    try:
        context.load_cert_chain(certfile, keyfile, password=give_password)
    except TLSConfigError:
        raise
    except ssl.SSLError as exc:
        reason = _reason(exc)
        if "KEY_VALUES_MISMATCH" in reason:
            raise TLSConfigError(f"--ssl-keyfile {keyfile or certfile} does not match the "
                                 f"certificate in --ssl-certfile {certfile}") from None
        if asked and ("BAD_DECRYPT" in reason or "bad decrypt" in reason.lower()
                      or "PEM lib" in str(exc)):
            raise TLSConfigError(f"--ssl-keyfile-password: wrong password for "
                                 f"{keyfile or certfile}") from None
        raise TLSConfigError(_which_file_is_bad(certfile, keyfile)
                             or f"--ssl-certfile {certfile} / --ssl-keyfile {keyfile or certfile}: "
                             f"not a PEM certificate and private key ({reason})") from None


_PEM_CERT = re.compile(rb"-----BEGIN (?:TRUSTED |X509 )?CERTIFICATE-----")
_PEM_KEY = re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")
_SNIFF_LIMIT = 1 << 20  # certificate chains and keys are a few KiB


def _which_file_is_bad(certfile: str, keyfile: str | None) -> str | None:
    """OpenSSL says "PEM lib" whichever file it could not use: name the one (or None)."""
    try:
        with open(certfile, "rb") as f:
            cert_text = f.read(_SNIFF_LIMIT)
        key_text = cert_text
        if keyfile:
            with open(keyfile, "rb") as f:
                key_text = f.read(_SNIFF_LIMIT)
    except OSError:
        return None
    if not _PEM_CERT.search(cert_text):
        hint = ("it holds a private key: are --ssl-certfile and --ssl-keyfile swapped?"
                if _PEM_KEY.search(cert_text) else
                f"if it is DER, 'openssl x509 -inform der -in {certfile} -out cert.pem' "
                "converts it")
        return f"--ssl-certfile {certfile}: no PEM certificate in it ({hint})"
    if not _PEM_KEY.search(key_text):
        if not keyfile:
            return (f"--ssl-certfile {certfile} holds no private key; give the key's file "
                    "with --ssl-keyfile")
        return f"--ssl-keyfile {keyfile}: no PEM private key in it"
    return None


def _readable(option: str, path: str) -> None:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise TLSConfigError(f"{option}: no such file: {path}") from None
    except PermissionError:  # a directory on the way that this user may not enter
        raise TLSConfigError(f"{option}: {path} is out of reach of {_user()}: a directory "
                             "on its path may not be entered") from None
    except OSError as exc:
        raise TLSConfigError(f"{option}: {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise TLSConfigError(f"{option}: {path} is a directory, not a file")
    if not os.access(path, os.R_OK):
        raise TLSConfigError(f"{option}: {path} is not readable by {_user()}")


def _user() -> str:
    """Who reads the files: after --user, not who started Gannet."""
    uid = os.geteuid()
    try:
        import pwd

        return f"user {pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (ImportError, KeyError):
        return f"uid {uid}"


def _reason(exc: ssl.SSLError) -> str:
    return str(getattr(exc, "reason", None) or exc.args[-1] if exc.args else exc)
