"""docs/deployment.md shows the front-end configs these tests run: the lines that matter
must be in both places, so neither drifts. Skipped until the page has the front-end
sections (the "## Behind HAProxy" heading marks them)."""
from __future__ import annotations

from pathlib import Path

import pytest

import test_frontend_apache as apache
import test_frontend_haproxy as haproxy
import test_frontend_nginx as nginx
import test_frontend_uwsgi as uwsgi

DEPLOYMENT = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"

# (config text the test runs, lines that must appear verbatim in it and in the docs)
REQUIRED = {
    "nginx": (nginx.NGINX_HTTP + nginx.PROXY_SETTINGS, [
        "map $http_upgrade $connection_upgrade {",
        "default upgrade;",
        "''      '';",
        "keepalive 16;",
        "client_max_body_size 0;",
        "proxy_set_header X-Forwarded-Prefix /app;",
        'proxy_set_header X-Forwarded-Prefix "";',
        *[line.split("#", 1)[0].strip() for line in nginx.PROXY_SETTINGS.splitlines()
          if line.strip()],
    ]),
    "uwsgi": (uwsgi.NGINX_UWSGI_SERVER, [
        "uwsgi_buffering off;",
        "uwsgi_request_buffering off;",
        "uwsgi_read_timeout 1h;",
    ]),
    "haproxy": (haproxy.HAPROXY_CFG, [
        "timeout tunnel 1h",
        "option forwardfor",
        "option httpchk GET /health",
        "http-check expect status 200",
        "send-proxy-v2-ssl",
    ]),
    "apache": (apache.APACHE_VHOST + apache.APACHE_UWSGI_VHOST, [
        "ProxyPreserveHost On",
        "ProxyRequests Off",
        "upgrade=websocket keepalive=On",
        "RequestHeader set X-Forwarded-Proto",
        "RequestHeader unset X-Forwarded-Port",
        "RequestHeader unset X-Forwarded-Prefix",
        "ProxyPass /tunnel/ws ws://127.0.0.1:",
        "ProxyPass / uwsgi://127.0.0.1:",
    ]),
}


@pytest.mark.parametrize("front_end", sorted(REQUIRED))
def test_documented_config_is_the_tested_config(front_end):
    config, lines = REQUIRED[front_end]
    # The test's config, with its doubled braces (str.format escapes) read as nginx sees them.
    config = config.replace("{{", "{").replace("}}", "}")
    for line in lines:
        assert line in config, f"the {front_end} test config lacks {line!r}"
    text = DEPLOYMENT.read_text(encoding="utf-8") if DEPLOYMENT.exists() else ""
    if "## Behind HAProxy" not in text:
        pytest.skip("docs/deployment.md has no front-end sections yet (/tmp/gannet-docs-frontends.md)")
    missing = [line for line in lines if line not in text]
    assert not missing, f"docs/deployment.md lacks these {front_end} lines: {missing}"
