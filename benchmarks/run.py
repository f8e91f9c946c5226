#!/usr/bin/env python3
"""How fast is Gannet here? Run it side by side with the peer servers installed beside it.

    python benchmarks/run.py                         # hello scenario, every server found
    python benchmarks/run.py --scenario all --rounds 5 --duration 10
    python benchmarks/run.py --scenario upload,download   # 10 MiB bodies, MiB/s
    python benchmarks/run.py --servers gannet,uvicorn --baseline uvicorn
    python benchmarks/run.py --server 'mine=gannet {app} --port {port} --host {host} --no-access-log'
    python benchmarks/run.py --list                  # what was found, and the commands

Each server runs alone (one worker process, access log off, uvloop where it offers it) on
a free loopback port, and `wrk` drives it. Servers take turns in rounds (A B C, A B C, ...)
so that a slow minute on a shared machine hits all of them, and the table reports the
median of the per-round ratios against a baseline: the one figure that holds on a noisy
machine. With two or more CPUs the server is pinned to CPU 0 and wrk to CPU 1 (taskset),
so the two do not fight over a core. The big-body scenarios (upload, download, wsgi-upload,
wsgi-download) move 10 MiB per request over 4 connections and report MiB/s, uploaded
bytes included.

Only the standard library is needed; the peers are found on PATH, in the directory of the
Python running this script, or in --peers-bin.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
APPS = HERE / "apps"
HOST = "127.0.0.1"


@dataclass(frozen=True)
class Scenario:
    name: str
    interface: str  # "asgi" or "wsgi": which servers take part
    app: str
    desc: str
    method: str = "GET"
    upload: int = 0  # request body bytes: counted into MiB/s, as wrk does not
    conns: int = 64  # wrk connections unless --conns is given
    bulk: bool = False  # big bodies: MiB/s is the figure, not req/s
    tls: bool = False  # over HTTPS, with a throwaway certificate (servers in TLS_FLAGS only)

    @property
    def metric(self) -> str:
        return "mibs" if self.bulk else "rps"


MiB = 1024 * 1024
BIG = 10 * MiB  # the big-body scenarios' body size; the apps/*_asgi|wsgi.py agree

SCENARIOS = {
    "hello": Scenario("hello", "asgi", "hello_asgi:app",
                      "ASGI, GET / -> 200 'Hello, world!' (13 bytes), keep-alive"),
    "h1-tls": Scenario("h1-tls", "asgi", "hello_asgi:app",
                       "as hello, over TLS (RSA-2048 self-signed certificate; keep-alive, so "
                       "handshakes barely count)", tls=True),
    "json": Scenario("json", "asgi", "json_asgi:app",
                     "ASGI, GET / -> json.dumps of a small dict per request, keep-alive"),
    "wsgi": Scenario("wsgi", "wsgi", "hello_wsgi:app",
                     "WSGI, GET / -> 200 'Hello, world!', keep-alive where the server allows"),
    "upload": Scenario("upload", "asgi", "upload_asgi:app",
                       "ASGI, POST 10 MiB -> app reads it all via receive(), answers the count",
                       method="POST", upload=BIG, conns=4, bulk=True),
    "download": Scenario("download", "asgi", "download_asgi:app",
                         "ASGI, GET / -> 10 MiB in 64 KiB more_body chunks, Content-Length set",
                         conns=4, bulk=True),
    "wsgi-upload": Scenario("wsgi-upload", "wsgi", "upload_wsgi:app",
                            "WSGI, POST 10 MiB -> app reads wsgi.input 64 KiB at a time, answers the count",
                            method="POST", upload=BIG, conns=4, bulk=True),
    "wsgi-download": Scenario("wsgi-download", "wsgi", "download_wsgi:app",
                              "WSGI, GET / -> 10 MiB from a generator of 64 KiB blocks, Content-Length set",
                              conns=4, bulk=True),
}

# name: (interface, executable looked up, package for the version, command template).
# Template fields: {exe} {python} {host} {port} {app}. One worker each, access log off.
PEERS: dict[str, tuple[str, str, str, str]] = {
    "gannet": ("asgi", "", "gannet",
               "{python} -m gannet {app} --host {host} --port {port} --no-access-log "
               "--log-level warning"),
    "uvicorn": ("asgi", "uvicorn", "uvicorn",
                "{exe} {app} --host {host} --port {port} --workers 1 --no-access-log "
                "--log-level warning"),
    "granian": ("asgi", "granian", "granian",
                "{exe} {app} --interface asgi --host {host} --port {port} --workers 1 "
                "--no-access-log --log-level warning"),
    "hypercorn": ("asgi", "hypercorn", "hypercorn",
                  "{exe} {app} --bind {host}:{port} --workers 1 --log-level warning"),
    "gannet-wsgi": ("wsgi", "", "gannet",
                    "{python} -m gannet {app} --host {host} --port {port} --no-access-log "
                    "--log-level warning"),
    "gunicorn": ("wsgi", "gunicorn", "gunicorn",
                 "{exe} {app} -k gthread --threads 4 -w 1 -b {host}:{port} --log-level warning"),
    "granian-wsgi": ("wsgi", "granian", "granian",
                     "{exe} {app} --interface wsgi --host {host} --port {port} --workers 1 "
                     "--no-access-log --log-level warning"),
    "uvicorn-wsgi": ("wsgi", "uvicorn", "uvicorn",
                     "{exe} {app} --interface wsgi --host {host} --port {port} --workers 1 "
                     "--no-access-log --log-level warning"),
}


# How each peer is told to serve TLS; {cert} {key} are the run's throwaway files.
TLS_FLAGS = {
    "gannet": "--ssl-certfile {cert} --ssl-keyfile {key}",
    "uvicorn": "--ssl-certfile {cert} --ssl-keyfile {key}",
    "granian": "--ssl-certificate {cert} --ssl-keyfile {key}",
    "hypercorn": "--certfile {cert} --keyfile {key}",
}


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed RSA-2048 certificate for 127.0.0.1 (the openssl command line)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


@dataclass
class Server:
    name: str
    interface: str
    command: str  # template
    exe: str | None
    python: str
    version: str = ""
    results: dict[str, list[dict]] = field(default_factory=dict)


# ---------------------------------------------------------------------- discovery
def _find(name: str, extra: list[Path]) -> str | None:
    for directory in extra:
        candidate = directory / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(name)


def _python_of(exe: str) -> str:
    """The interpreter a console script runs with (its shebang), to ask for its version."""
    try:
        with open(exe, "rb") as handle:
            first = handle.readline().decode(errors="replace").strip()
    except OSError:
        return sys.executable
    if first.startswith("#!") and "python" in first:
        return first[2:].strip().split()[0]
    return sys.executable


def _version(python: str, package: str) -> str:
    try:
        out = subprocess.run(
            [python, "-c", f"import importlib.metadata as m; print(m.version({package!r}))"],
            capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return out.stdout.strip() or "?"


def _has_module(python: str, module: str) -> bool:
    try:
        return subprocess.run([python, "-c", f"import {module}"], capture_output=True,
                              timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _gannet_python() -> str | None:
    probe = subprocess.run([sys.executable, "-c", "import gannet"], capture_output=True)
    if probe.returncode == 0:
        return sys.executable
    exe = shutil.which("gannet")
    return _python_of(exe) if exe else None


def discover(peers_bin: list[Path], custom: list[str]) -> dict[str, Server]:
    extra = [*peers_bin, Path(sys.executable).parent]
    found: dict[str, Server] = {}
    gannet_python = _gannet_python()
    for name, (interface, exe_name, package, command) in PEERS.items():
        if not exe_name:
            if gannet_python is None:
                continue
            server = Server(name, interface, command, None, gannet_python)
            server.version = _version(gannet_python, package)
        else:
            exe = _find(exe_name, extra)
            if exe is None:
                continue
            python = _python_of(exe)
            if name == "hypercorn" and _has_module(python, "uvloop"):
                command += " --worker-class uvloop"  # hypercorn's default loop is asyncio
            server = Server(name, interface, command, exe, python, _version(python, package))
        found[name] = server
    for spec in custom:
        name, sep, command = spec.partition("=")
        if not sep or not name or not command:
            raise SystemExit(f"--server: expected NAME=COMMAND, got {spec!r}")
        interface = "wsgi" if "wsgi" in name else "asgi"
        found[name] = Server(name, interface, command, None, sys.executable, "custom")
    return found


# ---------------------------------------------------------------------- running
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _pin(cpu: int, pin: bool) -> list[str]:
    if pin and shutil.which("taskset"):
        return ["taskset", "-c", str(cpu)]
    return []


def _wait_ready(proc: subprocess.Popen, port: int, timeout: float, tls: bool = False) -> str | None:
    """None when the server answers 200 on /; else why not."""
    deadline = time.monotonic() + timeout
    last = ""
    context = ssl._create_unverified_context() if tls else None  # our own throwaway cert
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"exited with status {proc.returncode}"
        try:
            with urllib.request.urlopen(f"{'https' if tls else 'http'}://{HOST}:{port}/",
                                        timeout=2, context=context) as response:
                if response.status == 200:
                    return None
                last = f"status {response.status}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.1)
    return f"not ready after {timeout:.0f}s ({last})"


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}
_BYTES = {"": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3, "T": 1024 ** 4}  # wrk's are binary


def _ms(text: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s|m)", text)
    return float(match.group(1)) * _UNITS[match.group(2)] if match else float("nan")


def wrk_script(scenario: Scenario, directory: Path) -> Path | None:
    """A wrk Lua script sending the scenario's request body, or None for a plain GET."""
    if not scenario.upload:
        return None
    path = directory / f"{scenario.name}.lua"
    path.write_text(f'wrk.method = "{scenario.method}"\n'
                    f'wrk.body = string.rep("x", {scenario.upload})\n'
                    'wrk.headers["Content-Type"] = "application/octet-stream"\n')
    return path


def run_wrk(port: int, duration: float, conns: int, pin: bool, script: Path | None = None,
            tls: bool = False) -> dict:
    argv = [*_pin(1, pin), "wrk", "-t1", f"-c{conns}", f"-d{max(1, round(duration))}s",
            "--timeout", "5s", "--latency", *(["-s", str(script)] if script else []),
            f"{'https' if tls else 'http'}://{HOST}:{port}/"]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30)
    except subprocess.TimeoutExpired:
        return {"error": "wrk did not finish in time"}
    text = out.stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if out.returncode != 0 or not rps:
        return {"error": f"wrk failed: {(text + out.stderr).strip()[-300:]}"}
    result = {"rps": float(rps.group(1))}
    latency = re.search(r"^\s+99%\s+(\S+)", text, re.M)
    result["p99_ms"] = _ms(latency.group(1)) if latency else float("nan")
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)([KMGT]?)B", text)
    result["read_bps"] = float(transfer.group(1)) * _BYTES[transfer.group(2)] if transfer else 0.0
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    sock_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    result["errors"] = (int(errors.group(1)) if errors else 0) + \
        (sum(map(int, sock_errors.groups())) if sock_errors else 0)
    return result


def measure(server: Server, scenario: Scenario, args: argparse.Namespace,
            script: Path | None = None) -> dict:
    port = _free_port()
    command = server.command.format(exe=server.exe or "", python=server.python, host=HOST,
                                    port=port, app=scenario.app)
    if scenario.tls:
        command += " " + TLS_FLAGS[server.name.removesuffix("-wsgi")].format(
            cert=args.cert, key=args.key)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(APPS), env.get("PYTHONPATH")]))
    env.pop("GANNET_CONFIG", None)
    proc = subprocess.Popen([*_pin(0, args.pin), *shlex.split(command)], cwd=APPS, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        problem = _wait_ready(proc, port, args.start_timeout, scenario.tls)
        if problem:
            _stop(proc)
            output = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            lines = [line for line in output.splitlines() if line.strip()]
            # The last line says why; drop a leading log timestamp to keep the table narrow.
            tail = re.sub(r"^[\d:+ -]+(\[\d+\] )?", "", lines[-1])[:300] if lines else ""
            return {"error": f"{problem}: {tail}" if tail else problem}
        conns = args.conns or scenario.conns
        if args.warmup > 0:
            run_wrk(port, args.warmup, conns, args.pin, script, scenario.tls)
        result = run_wrk(port, args.duration, conns, args.pin, script, scenario.tls)
        if scenario.bulk and "rps" in result:
            # wrk's Transfer/sec counts only what it read; add what it sent.
            result["mibs"] = (result["read_bps"] + result["rps"] * scenario.upload) / MiB
        return result
    finally:
        _stop(proc)
        if proc.stderr:
            proc.stderr.close()


# ---------------------------------------------------------------------- report
def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def report(scenario: Scenario, servers: list[Server], baseline: str | None, rounds: int,
           conns: int) -> str:
    """One table; the first figure is req/s, or MiB/s for the big-body scenarios (then
    req/s gets a column of its own). Ratios are on the first figure: higher is better."""
    key = scenario.metric
    unit = "MiB/s" if scenario.bulk else "req/s"
    extra = " req/s |" if scenario.bulk else ""
    lines = [f"### {scenario.name}: {scenario.desc}", ""]
    base = next((s for s in servers if s.name == baseline), None)
    lines.append(f"| server | version | {unit} (median) | min – max |{extra} p99 latency | "
                 f"× {baseline or '-'} (median of rounds) |")
    lines.append("|---|---|---:|---:|" + ("---:|" if scenario.bulk else "") + "---:|---:|")
    for server in servers:
        runs = server.results.get(scenario.name, [])
        good = [r for r in runs if key in r]
        if not good:
            why = next((r["error"] for r in runs if "error" in r), "no result")
            lines.append(f"| {server.name} | {server.version} | failed: {why.splitlines()[0][:120]} | |"
                         f"{' |' if scenario.bulk else ''} | |")
            continue
        values = [r[key] for r in good]
        ratio = "-"
        if base is not None:
            pairs = [(mine.get(key), theirs.get(key))
                     for mine, theirs in zip(runs, base.results.get(scenario.name, []))]
            ratios = [m / t for m, t in pairs if m and t]
            if ratios:
                ratio = f"{statistics.median(ratios):.2f}×"
        errors = sum(r.get("errors", 0) for r in good)
        note = f" ({errors} errors)" if errors else ""
        rps = f" {_fmt(statistics.median(r['rps'] for r in good))} |" if scenario.bulk else ""
        lines.append(f"| {server.name} | {server.version} | {_fmt(statistics.median(values))}{note} | "
                     f"{_fmt(min(values))} – {_fmt(max(values))} |{rps} "
                     f"{statistics.median(r['p99_ms'] for r in good):.2f} ms | {ratio} |")
    lines.append("")
    lines.append(f"{len(servers)} server(s) × {rounds} round(s), one worker each, {conns} wrk "
                 f"connections; each ratio is the median of per-round ratios against {baseline}.")
    return "\n".join(lines)


# ---------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="hello",
                        help=f"comma-separated, or 'all': {', '.join(SCENARIOS)} (default hello)")
    parser.add_argument("--servers", default="",
                        help="comma-separated names to run (default: every one found)")
    parser.add_argument("--server", action="append", default=[], metavar="NAME=COMMAND",
                        help="add a server: a command template with {host} {port} {app} {python}")
    parser.add_argument("--baseline", default=None,
                        help="server the ratios compare against (default uvicorn, or the first found)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per scenario (default 3)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up load (default 1)")
    parser.add_argument("--conns", type=int, default=None,
                        help="wrk connections (default 64; 4 for the big-body scenarios)")
    parser.add_argument("--peers-bin", action="append", default=[], type=Path, metavar="DIR",
                        help="also look for peer executables here (e.g. another venv's bin/)")
    parser.add_argument("--no-pin", dest="pin", action="store_false",
                        help="do not pin the server and wrk to separate CPUs")
    parser.add_argument("--start-timeout", type=float, default=20.0, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the raw results here")
    parser.add_argument("--list", action="store_true", help="show the servers found and exit")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.duration <= 0:
        parser.error("--rounds must be >= 1 and --duration > 0")
    if args.conns is not None and args.conns < 1:
        parser.error("--conns must be >= 1")
    if (os.cpu_count() or 1) < 2:
        args.pin = False

    names = list(SCENARIOS) if args.scenario == "all" else \
        [n.strip() for n in args.scenario.split(",") if n.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    scenarios = [SCENARIOS[n] for n in names]

    found = discover(args.peers_bin, args.server)
    if args.servers:
        wanted = [n.strip() for n in args.servers.split(",") if n.strip()]
        missing = [n for n in wanted if n not in found]
        if missing:
            print(f"not found, skipped: {', '.join(missing)} (install them, or use --peers-bin DIR)",
                  file=sys.stderr)
        found = {n: found[n] for n in wanted if n in found}

    if args.list:
        print("scenarios:")
        for scenario in SCENARIOS.values():
            print(f"  {scenario.name:14} {scenario.desc}")
        print("servers found:")
        for server in found.values():
            print(f"  {server.name:14} {server.version:10} {server.interface}  "
                  f"{server.command.format(exe=server.exe or '', python=server.python, host=HOST, port='PORT', app='APP')}")
        absent = [n for n in PEERS if n not in found]
        if absent:
            print(f"not found: {', '.join(absent)}")
        return 0

    if shutil.which("wrk") is None:
        print("wrk is not installed: `sudo apt-get install wrk` (Debian/Ubuntu) or "
              "`brew install wrk` (macOS)", file=sys.stderr)
        return 2
    if not found:
        print("no servers found (is gannet installed in this Python? pip install -e .)", file=sys.stderr)
        return 2

    plan = [(scenario, [s for s in found.values() if s.interface == scenario.interface
                        and (not scenario.tls or s.name in TLS_FLAGS)])
            for scenario in scenarios]
    runs = sum(len(servers) for _, servers in plan) * args.rounds
    estimate = runs * (args.duration + args.warmup + 2)
    print(f"{runs} measurements, about {estimate / 60:.1f} minutes "
          f"(pinning {'on' if args.pin and shutil.which('taskset') else 'off'})", file=sys.stderr)

    output = []
    with tempfile.TemporaryDirectory(prefix="gannet-bench-") as scripts:
        args.cert = args.key = None
        if any(scenario.tls for scenario in scenarios):
            if shutil.which("openssl") is None:
                print("openssl is not installed: the TLS scenario makes its certificate with it",
                      file=sys.stderr)
                return 2
            args.cert, args.key = make_certificate(Path(scripts))
        for scenario, servers in plan:
            if not servers:
                print(f"{scenario.name}: no {scenario.interface.upper()} server found; skipped",
                      file=sys.stderr)
                continue
            script = wrk_script(scenario, Path(scripts))
            for round_number in range(1, args.rounds + 1):
                for server in servers:
                    result = measure(server, scenario, args, script)
                    server.results.setdefault(scenario.name, []).append(result)
                    if "mibs" in result:
                        shown = f"{result['mibs']:,.0f} MiB/s, {result['rps']:,.1f} req/s"
                    elif "rps" in result:
                        shown = f"{result['rps']:,.0f} req/s"
                    else:
                        shown = result["error"][:200]
                    print(f"  {scenario.name} round {round_number}/{args.rounds} {server.name}: {shown}",
                          file=sys.stderr)
            names_here = [s.name for s in servers]
            baseline = args.baseline if args.baseline in names_here else next(
                (n for n in ("uvicorn", "gunicorn", "uvicorn-wsgi") if n in names_here), names_here[0])
            output.append(report(scenario, servers, baseline, args.rounds,
                                 args.conns or scenario.conns))

    print()
    print("\n\n".join(output))
    if args.json:
        args.json.write_text(json.dumps({name: {"version": s.version, "results": s.results}
                                         for name, s in found.items()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
