"""TLS start-up checks and HUP reloads (issue 13).

Start-up: a certificate or key Gannet cannot use stops the start with exit status 2 and
one line saying which option and file, in the single process and under a master (checked
before any worker is forked). HUP: new workers read the certificate again; new
connections get the new one while no request fails; a broken file at HUP time leaves the
old workers serving with the old certificate."""
from __future__ import annotations

import os
import re
import signal
import socket
import ssl
import threading
import time
from pathlib import Path

import httpx
import pytest

from tls.conftest import (TLSFiles, client_context, run_gannet, serial_of_der, tls_connect,
                          wait_until)

ASGI = "tls_clients_apps:asgi_app"


def _case_args(case: str, files: TLSFiles) -> tuple[list[str], str]:
    """The options for ``case`` and the regex its one error line must match."""
    cert, key, d = str(files.cert), str(files.key), files.dir
    if case == "missing certificate":
        return (["--ssl-certfile", str(d / "nope.pem"), "--ssl-keyfile", key],
                rf"--ssl-certfile: no such file: {re.escape(str(d / 'nope.pem'))}$")
    if case == "missing key":
        return (["--ssl-certfile", cert, "--ssl-keyfile", str(d / "nope.key")],
                rf"--ssl-keyfile: no such file: {re.escape(str(d / 'nope.key'))}$")
    if case == "certificate is a directory":
        return (["--ssl-certfile", str(d), "--ssl-keyfile", key],
                r"--ssl-certfile: .* is a directory, not a file$")
    if case == "key does not match":
        _, other_key = files.issue("other")
        return (["--ssl-certfile", cert, "--ssl-keyfile", str(other_key)],
                rf"--ssl-keyfile {re.escape(str(other_key))} does not match the certificate "
                rf"in --ssl-certfile {re.escape(cert)}$")
    if case == "encrypted key, no password":
        encrypted = str(files.encrypted_key("s3cret"))
        return (["--ssl-certfile", cert, "--ssl-keyfile", encrypted],
                rf"--ssl-keyfile {re.escape(encrypted)}: the key is encrypted; give its "
                r"password with --ssl-keyfile-password$")
    if case == "encrypted key, wrong password":
        encrypted = str(files.encrypted_key("s3cret"))
        return (["--ssl-certfile", cert, "--ssl-keyfile", encrypted,
                 "--ssl-keyfile-password", "wrong"],
                rf"--ssl-keyfile-password: wrong password for {re.escape(encrypted)}$")
    if case == "certificate in DER, not PEM":
        der = str(files.der_cert())
        return (["--ssl-certfile", der, "--ssl-keyfile", key],
                rf"--ssl-certfile {re.escape(der)}: no PEM certificate in it\b[^;]*(;|$)")
    if case == "certificate file of text":
        text = d / "notes.txt"
        text.write_text("this is not a certificate\n")
        return (["--ssl-certfile", str(text), "--ssl-keyfile", key],
                rf"--ssl-certfile {re.escape(str(text))}: no PEM certificate in it")
    if case == "certificate and key swapped":
        return (["--ssl-certfile", key, "--ssl-keyfile", cert],
                rf"--ssl-certfile {re.escape(key)}: no PEM certificate in it \(it holds a "
                r"private key: are --ssl-certfile and --ssl-keyfile swapped\?\)$")
    if case == "certificate file without its key":
        return (["--ssl-certfile", cert],
                rf"--ssl-certfile {re.escape(cert)} holds no private key.*--ssl-keyfile")
    if case == "key file of text":
        text = d / "key.txt"
        text.write_text("not a key\n")
        return (["--ssl-certfile", cert, "--ssl-keyfile", str(text)],
                rf"--ssl-keyfile {re.escape(str(text))}: no PEM private key in it")
    if case == "required without CA":
        return (["--ssl-certfile", cert, "--ssl-keyfile", key, "--ssl-cert-reqs", "required"],
                r"--ssl-cert-reqs required: client certificates are checked against "
                r"--ssl-ca-certs, which is not set$")
    if case == "CA file of text":
        text = d / "ca.txt"
        text.write_text("not a CA\n")
        return (["--ssl-certfile", cert, "--ssl-keyfile", key, "--ssl-ca-certs", str(text)],
                rf"--ssl-ca-certs {re.escape(str(text))}: no CA certificate could be read")
    if case == "ciphers OpenSSL does not know":
        return (["--ssl-certfile", cert, "--ssl-keyfile", key, "--ssl-ciphers", "NO-SUCH-SUITE"],
                r"--ssl-ciphers: OpenSSL accepts none of 'NO-SUCH-SUITE'$")
    if case == "key without certificate":
        return (["--ssl-keyfile", key], r"--ssl-keyfile without --ssl-certfile: TLS needs a "
                                        r"certificate")
    if case == "CA and cert-reqs without certificate":
        return (["--ssl-ca-certs", str(files.ca_pem), "--ssl-cert-reqs", "required"],
                r"--ssl-ca-certs, --ssl-cert-reqs without --ssl-certfile")
    if case == "min version without certificate":
        return (["--ssl-min-version", "TLSv1.3"], r"--ssl-min-version without --ssl-certfile")
    raise AssertionError(case)


CASES = ["missing certificate", "missing key", "certificate is a directory",
         "key does not match", "encrypted key, no password", "encrypted key, wrong password",
         "certificate in DER, not PEM", "certificate file of text", "certificate and key swapped",
         "certificate file without its key", "key file of text", "required without CA",
         "CA file of text", "ciphers OpenSSL does not know", "key without certificate",
         "CA and cert-reqs without certificate", "min version without certificate"]


@pytest.mark.parametrize("workers", [None, "2"], ids=["single", "master -w 2"])
@pytest.mark.parametrize("case", CASES)
def test_start_up_check_exits_2_with_one_line(tls_files, case, workers):
    args, pattern = _case_args(case, tls_files)
    if workers:
        args += ["-w", workers]
    done = run_gannet(ASGI, *args)
    output = done.stdout
    assert done.returncode == 2, output
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if "[ERROR]" in line or "error:" in line]
    assert len(errors) == 1, output
    assert re.search(pattern, errors[0]), (pattern, output)
    # nothing was started: no worker forked, nothing bound, the app not even loaded
    assert "Booting worker" not in output and "Listening on" not in output, output
    assert "bound" not in output and "Detected the" not in output, output


@pytest.mark.parametrize("key_format", ["PKCS#8", "traditional"])
def test_encrypted_key_with_the_right_password_serves(tls_server, tls_files, key_format):
    if key_format == "PKCS#8":
        key = tls_files.encrypted_key("s3cret")
    else:
        from cryptography.hazmat.primitives import serialization
        private = serialization.load_pem_private_key(tls_files.key.read_bytes(), password=None)
        key = tls_files.dir / "traditional.key"
        key.write_bytes(private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.BestAvailableEncryption(b"s3cret")))
    assert b"ENCRYPTED" in key.read_bytes()
    server = tls_server(ASGI, "--ssl-keyfile-password", "s3cret", keyfile=key)
    response = httpx.get(f"https://127.0.0.1:{server.port}/", verify=client_context(tls_files),
                         timeout=10)
    assert response.text == "hello over tls"


def test_certificate_and_key_in_one_file_serves(tls_server, tls_files):
    server = tls_server(ASGI, certfile=tls_files.combined, keyfile=None)
    response = httpx.get(f"https://127.0.0.1:{server.port}/", verify=client_context(tls_files),
                         timeout=10)
    assert response.text == "hello over tls"


def test_gunicorn_style_aliases_and_numbers(tls_server, tls_files):
    # --certfile/--keyfile/--ca-certs/--cert-reqs 1 (gunicorn's and uvicorn's spellings)
    server = tls_server(ASGI, "--certfile", str(tls_files.cert), "--keyfile", str(tls_files.key),
                        "--ca-certs", str(tls_files.ca_pem), "--cert-reqs", "1", tls=False)
    assert server.url.startswith("https://")
    context = client_context(tls_files)
    with tls_connect(server, context) as sock:  # optional: no client certificate is fine
        assert sock.version() in ("TLSv1.2", "TLSv1.3")


# ------------------------------------------------------------------ HUP reload
def _serial_now(server, files: TLSFiles) -> int:
    with tls_connect(server, client_context(files)) as sock:
        return serial_of_der(sock.getpeercert(binary_form=True))


class _Traffic:
    """Requests on new connections, back to back, from a thread, until stopped; every
    failure is recorded with its exception."""

    def __init__(self, server, files: TLSFiles) -> None:
        self.server = server
        self.context = client_context(files)
        self.serials: list[int] = []
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + 60
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                with tls_connect(self.server, self.context) as sock:
                    serial = serial_of_der(sock.getpeercert(binary_form=True))
                    sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                    data = b""
                    while chunk := sock.recv(65536):
                        data += chunk
                if not (data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"hello over tls")):
                    self.failures.append(f"bad response {data[:200]!r}")
                self.serials.append(serial)
            except (OSError, ssl.SSLError) as exc:
                self.failures.append(repr(exc))

    def __enter__(self) -> "_Traffic":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


def test_hup_reloads_the_certificate(tls_server, tls_files):
    server = tls_server(ASGI, "-w", "1")
    old = tls_files.serial
    assert _serial_now(server, tls_files) == old
    with _Traffic(server, tls_files) as traffic:
        wait_until(lambda: len(traffic.serials) >= 5, what="traffic before the HUP")
        new = tls_files.replace_server_cert()
        assert new != old
        # Not reloaded by itself: still the old certificate until the HUP.
        assert _serial_now(server, tls_files) == old
        server.signal(signal.SIGHUP)
        wait_until(lambda: _serial_now(server, tls_files) == new, timeout=20,
                   what="a new connection gets the new certificate")
        seen = len(traffic.serials)
        wait_until(lambda: len(traffic.serials) >= seen + 5, what="traffic after the reload")
    assert traffic.failures == []
    assert old in traffic.serials and new in traffic.serials
    # once the new one is served the old one never comes back (the old worker is gone)
    first_new = traffic.serials.index(new)
    assert old not in traffic.serials[first_new + 1:]
    assert "Traceback" not in server.log and "[ERROR]" not in server.log


def test_hup_with_a_broken_certificate_keeps_the_old_one(tls_server, tls_files):
    server = tls_server(ASGI, "-w", "1")
    old = tls_files.serial
    good_cert = tls_files.cert.read_bytes()
    tls_files.cert.write_text("half-written renewal\n")
    server.signal(signal.SIGHUP)
    # The master reads the files at HUP (as root, before any worker switches user): a
    # broken one is refused there, and no new worker is started.
    server.wait_for_log(r"\[ERROR\] Not reloading: --ssl-certfile "
                        rf"{re.escape(str(tls_files.cert))}: no PEM certificate in it.*"
                        r"\(the current workers go on serving\)", timeout=20)
    assert _serial_now(server, tls_files) == old  # the old worker still serves
    assert server.proc.poll() is None
    # The file fixed, the next HUP works.
    new = tls_files.replace_server_cert()
    server.signal(signal.SIGHUP)
    wait_until(lambda: _serial_now(server, tls_files) == new, timeout=20,
               what="the fixed certificate is served")
    assert good_cert != tls_files.cert.read_bytes()


# ------------------------------------------------------------------ files out of the user's reach
def test_a_file_out_of_reach_is_not_called_missing(tls_files, monkeypatch):
    # A directory on the path that this user may not enter (Let's Encrypt's live/ and
    # archive/ are root's, 0700): stat fails with EACCES, and the line must say so, naming
    # the user, not "no such file" (as root no permission fails, so stat is made to).
    from gannet.config import Config
    from gannet.config.tls import TLSConfigError, make_context

    real_stat = os.stat
    blocked = str(tls_files.key)

    def stat(path, *args, **kwargs):
        if os.fspath(path) == blocked:
            raise PermissionError(13, "Permission denied", blocked)
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    config = Config(app="x:y", ssl_certfile=str(tls_files.cert), ssl_keyfile=blocked)
    with pytest.raises(TLSConfigError) as caught:
        make_context(config)
    message = str(caught.value)
    assert "no such file" not in message, message
    assert re.fullmatch(rf"--ssl-keyfile: {re.escape(blocked)} is out of reach of "
                        r"(user \S+ \(uid \d+\)|uid \d+): a directory on its path may not be "
                        r"entered", message), message


WHOAMI_APP = (
    "import os\n"
    "async def app(scope, receive, send):\n"
    "    if scope['type'] != 'http':\n"
    "        return\n"
    "    body = str(os.getuid()).encode()\n"
    "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
    "    await send({'type': 'http.response.body', 'body': body})\n"
)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root (CI runs as root)")
@pytest.mark.parametrize("workers", [(), ("-w", "1")], ids=["single", "master -w 1"])
def test_root_only_certificate_files_with_user_serve(tls_files, workers):
    import pwd
    import shutil
    import tempfile

    from conftest import start_server

    try:
        nobody = pwd.getpwnam("nobody").pw_uid
    except KeyError:
        pytest.skip("no user nobody")
    # The app where nobody can import it; the certificate where only root can read it.
    app_dir = Path(tempfile.mkdtemp(prefix="gannet-tls-app-"))
    (app_dir / "whoami_tls.py").write_text(WHOAMI_APP)
    os.chmod(app_dir / "whoami_tls.py", 0o644)
    os.chmod(app_dir, 0o755)
    live = Path(tempfile.mkdtemp(prefix="gannet-letsencrypt-live-"))  # 0700, root's
    shutil.copy(tls_files.cert, live / "fullchain.pem")
    shutil.copy(tls_files.key, live / "privkey.pem")
    os.chmod(live / "privkey.pem", 0o600)
    server = None
    try:
        # --ws none: the interpreter may live where nobody cannot import more of it
        server = start_server("whoami_tls:app", "--host", "127.0.0.1",
                              "--ssl-certfile", str(live / "fullchain.pem"),
                              "--ssl-keyfile", str(live / "privkey.pem"),
                              "-u", "nobody", "-g", "nogroup", "--ws", "none", *workers,
                              env={"PYTHONPATH": os.pathsep.join(
                                  [str(app_dir), str(Path(__file__).parents[2] / "src")])})
        with tls_connect(server, client_context(tls_files)) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(str(nobody).encode())
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(app_dir, ignore_errors=True)
        shutil.rmtree(live, ignore_errors=True)


# ------------------------------------------------------------------ resumption across workers
def test_session_resumption_across_workers(tls_server, tls_files):
    # The context is built in the master and inherited by the workers, so their session
    # ticket keys are the same: a ticket from one worker resumes on another (with a context
    # per worker only the worker that issued it could).
    server = tls_server(ASGI, "-w", "3")
    wait_until(lambda: server.log.count("Listening on https://") >= 3, timeout=20,
               what="3 workers listening")
    context = client_context(tls_files)
    session = None
    reused, pids = [], set()
    for _ in range(12):
        raw = socket.create_connection((server.host, server.port), timeout=5)
        with context.wrap_socket(raw, server_hostname="localhost", session=session) as sock:
            sock.sendall(b"GET /pid HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):  # also reads TLS 1.3's session tickets
                data += chunk
            assert data.startswith(b"HTTP/1.1 200 "), data[:200]
            reused.append(sock.session_reused)
            pids.add(data.rsplit(b"\r\n\r\n", 1)[1])
            if session is None:
                session = sock.session
    assert reused[0] is False and all(reused[1:]), reused
    assert len(pids) >= 2, pids  # the connections did reach more than one worker
