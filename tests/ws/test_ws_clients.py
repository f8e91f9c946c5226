"""Real clients and frameworks: aiohttp with compression, Starlette/FastAPI, Django Channels,
headless Chromium, and the Autobahn cases (kosoku)."""
import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from conftest import require_tool

HERE = Path(__file__).resolve().parent


@pytest.fixture
def server(gannet_server):
    return gannet_server("ws_app:app")


# ------------------------------------------------------------------ aiohttp + deflate
def test_aiohttp_client_with_permessage_deflate(server):
    aiohttp = pytest.importorskip("aiohttp")

    async def run():
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"http://{server.host}:{server.port}/echo",
                                          compress=15) as ws:
                extensions = ws._response.headers.get("Sec-WebSocket-Extensions", "")
                assert "permessage-deflate" in extensions
                big = "compressible " * 20000
                await ws.send_str(big)
                assert (await ws.receive(timeout=5)).data == big
                await ws.send_bytes(b"\x01" * 70000)
                assert (await ws.receive(timeout=5)).data == b"\x01" * 70000
                for i in range(50):  # context takeover across many messages
                    await ws.send_str(f"message {i}")
                    assert (await ws.receive(timeout=5)).data == f"message {i}"
                await ws.close(code=4100, message=b"aiohttp done")
            async with session.get(f"http://{server.host}:{server.port}/last-close") as resp:
                return await resp.json()

    record = asyncio.run(run())
    assert record["code"] in (4100, 1006)  # the app may not have recorded it yet


def test_deflate_parameters_negotiated(server):
    # Client asks for no context takeover and small windows: the answer honours them
    # (RFC 7692 §7.1), and messages still round-trip.
    from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
    factory = ClientPerMessageDeflateFactory(server_no_context_takeover=True,
                                             client_no_context_takeover=True,
                                             server_max_window_bits=10, client_max_window_bits=True)
    with connect(f"ws://{server.host}:{server.port}/echo", extensions=[factory],
                 compression=None) as ws:
        header = ws.response.headers["sec-websocket-extensions"]
        assert "server_no_context_takeover" in header
        assert "client_no_context_takeover" in header
        assert "server_max_window_bits=10" in header
        for text in ("a" * 5000, "b" * 10, "c" * 70000):
            ws.send(text)
            assert ws.recv(timeout=5) == text


def test_deflate_can_be_disabled(gannet_server):
    server = gannet_server("ws_app:app", "--no-ws-per-message-deflate")
    with connect(f"ws://{server.host}:{server.port}/echo") as ws:
        assert "sec-websocket-extensions" not in ws.response.headers
        ws.send("plain")
        assert ws.recv(timeout=5) == "plain"


# ------------------------------------------------------------------ Starlette / FastAPI
def test_fastapi_websocket_endpoint(gannet_server):
    pytest.importorskip("fastapi")
    server = gannet_server("ws_starlette:app")
    base = f"ws://{server.host}:{server.port}"
    with connect(base + "/ws/lobby", subprotocols=["json"]) as ws:
        assert ws.subprotocol == "json"
        ws.send(json.dumps({"n": 1}))
        assert json.loads(ws.recv(timeout=5)) == {"room": "lobby", "echo": {"n": 1}}
    with connect(base + "/bytes") as ws:
        ws.send(b"abc")
        assert ws.recv(timeout=5) == b"cba"
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
        assert info.value.rcvd.code == 4000 and info.value.rcvd.reason == "reversed"
    with pytest.raises(InvalidStatus) as info:
        connect(base + "/refuse")
    assert info.value.response.status_code == 403


# ------------------------------------------------------------------ Django Channels
CONSUMERS = '''
import json
from channels.generic.websocket import AsyncWebsocketConsumer


class Chat(AsyncWebsocketConsumer):
    async def connect(self):
        self.room = self.scope["url_route"]["kwargs"]["room"]
        await self.channel_layer.group_add(self.room, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(self.room, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        await self.channel_layer.group_send(self.room, {"type": "chat.message", "text": text_data})

    async def chat_message(self, event):
        await self.send(text_data=json.dumps({"room": self.room, "text": event["text"]}))
'''

ASGI = '''
import os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
from django.core.asgi import get_asgi_application
django_app = get_asgi_application()
from channels.routing import ProtocolTypeRouter, URLRouter
from django.urls import path
from chatsite.consumers import Chat

application = ProtocolTypeRouter({
    "http": django_app,
    "websocket": URLRouter([path("ws/chat/<str:room>/", Chat.as_asgi())]),
})
'''

SETTINGS = '''
SECRET_KEY = "test"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["channels"]
ROOT_URLCONF = "chatsite.urls"
ASGI_APPLICATION = "chatsite.asgi.application"
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
DATABASES = {}
USE_TZ = True
'''


def test_django_channels_consumer(gannet_server, tmp_path):
    pytest.importorskip("channels")
    pkg = tmp_path / "chatsite"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "settings.py").write_text(SETTINGS)
    (pkg / "urls.py").write_text("urlpatterns = []\n")
    (pkg / "consumers.py").write_text(CONSUMERS)
    (pkg / "asgi.py").write_text(ASGI)
    server = gannet_server("chatsite.asgi:application", "--lifespan", "off", cwd=tmp_path,
                           env={"PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"})
    url = f"ws://{server.host}:{server.port}/ws/chat/lobby/"
    with connect(url) as alice, connect(url) as bob:
        alice.send("hello bob")
        for ws in (alice, bob):  # the group message reaches both consumers
            assert json.loads(ws.recv(timeout=5)) == {"room": "lobby", "text": "hello bob"}


# ------------------------------------------------------------------ headless Chromium
def test_chromium_page_talks_over_websocket(server, tmp_path):
    """A real browser: the page's script talks over a WebSocket and reports its result back
    over HTTP; we wait for that report in the server's log (not for --dump-dom, whose
    virtual-time budget can run out before the socket has answered)."""
    chromium = require_tool("chromium")
    browser = subprocess.Popen(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--ignore-certificate-errors",
         f"http://{server.host}:{server.port}/"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        server.wait_for_log(r"PAGE REPORT RESULT hello from chromium\|bytes:1,2,3 "
                            r"ext=permessage-deflate", timeout=60)
    finally:
        browser.kill()
        browser.wait(timeout=10)


# ------------------------------------------------------------------ Autobahn (kosoku)
# A representative sample of the compression groups (12: permessage-deflate with context
# takeover, 13: with the various negotiated parameters), by exact ids.
COMPRESSION_SAMPLE = ["12.1.1", "12.1.5", "12.1.10", "12.2.1", "12.2.5", "12.3.3", "12.4.5",
                      "12.5.17", "13.1.1", "13.1.18", "13.2.1", "13.3.5", "13.4.3", "13.5.1",
                      "13.6.2", "13.7.18"]


def run_kosoku(server, args, outdir):
    kosoku = require_tool("kosoku") if not Path(sys.executable).with_name("kosoku").exists() \
        else str(Path(sys.executable).with_name("kosoku"))
    proc = subprocess.run([kosoku, f"{server.host}:{server.port}/echo", *args, "-p", "4", "-o", str(outdir)],
                          capture_output=True, text=True, timeout=600)
    index = json.loads((outdir / "index.json").read_text())
    results = next(iter(index.values()))
    failed = {case: r for case, r in results.items()
              if r["behavior"] == "FAILED" or r["behaviorClose"] == "FAILED"}
    assert proc.returncode == 0 and not failed, (proc.stdout[-3000:], failed)
    return results


def test_autobahn_core_cases(server, tmp_path):
    results = run_kosoku(server, ["-x", "12.*", "-x", "13.*"], tmp_path / "core")
    assert len(results) > 290


def test_autobahn_compression_sample(server, tmp_path):
    args = [arg for case in COMPRESSION_SAMPLE for arg in ("-i", case)]
    results = run_kosoku(server, args, tmp_path / "deflate")
    assert sorted(results) == sorted(COMPRESSION_SAMPLE)
