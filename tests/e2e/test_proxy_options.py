"""The behind-a-proxy options as the command line, the environment and config files give
them: --proxy-protocol's optional value, --uwsgi-socket's effect on the HTTP listener,
gunicorn's names in a Python config file."""
from __future__ import annotations

import pytest

from gannet.cli import config_from_args
from gannet.config import Config
from gannet.config.config import ConfigError


def test_bare_proxy_protocol_means_auto_and_a_value_is_taken():
    assert config_from_args(["app:x", "--proxy-protocol"]).proxy_protocol == "auto"
    assert config_from_args(["--proxy-protocol", "v2", "app:x"]).proxy_protocol == "v2"
    assert config_from_args(["app:x"]).proxy_protocol == "off"
    with pytest.raises(ConfigError, match="--proxy-protocol: must be one of off, v1, v2, auto; got 'v3'"):
        config_from_args(["app:x", "--proxy-protocol", "v3"])


def test_uwsgi_socket_alone_replaces_the_http_listener():
    config = Config("app:x", uwsgi_socket=["127.0.0.1:3031", "unix:/tmp/u.sock"], environ={})
    assert config.listen_addresses == [("127.0.0.1:3031", "uwsgi"), ("unix:/tmp/u.sock", "uwsgi")]


@pytest.mark.parametrize("options", [{"port": 9000}, {"bind": ["127.0.0.1:9000"]}, {"uds": "/tmp/h.sock"}])
def test_uwsgi_socket_with_an_http_listen_option_serves_both(options):
    config = Config("app:x", uwsgi_socket=["127.0.0.1:3031"], environ={}, **options)
    kinds = [kind for _address, kind in config.listen_addresses]
    assert kinds == ["http", "uwsgi"]


def test_a_bad_uwsgi_address_is_a_config_error():
    with pytest.raises(ConfigError, match="--uwsgi-socket: 'nonsense' is not HOST:PORT"):
        Config("app:x", uwsgi_socket=["nonsense"], environ={})


def test_gunicorn_names_in_a_python_config_file(tmp_path):
    path = tmp_path / "gunicorn.conf.py"
    path.write_text("bind = ['127.0.0.1:3031']\nprotocol = 'uwsgi'\nproxy_protocol = True\n"
                    "proxy_allow_ips = '10.0.0.0/8'\nforwarded_allow_ips = ['10.0.0.1', '10.0.0.2']\n"
                    "uwsgi_allow_ips = '*'\n")
    config = Config("app:x", config_file=str(path), environ={})
    assert config.listen_addresses == [("127.0.0.1:3031", "uwsgi")]
    assert config.proxy_protocol == "auto"
    assert config.proxy_allow_from == "10.0.0.0/8"
    assert config.forwarded_allow_ips == "10.0.0.1,10.0.0.2"
    assert config.uwsgi_allow_from == "*"


def test_gunicorn_protocol_must_be_http_or_uwsgi(tmp_path):
    path = tmp_path / "gunicorn.conf.py"
    path.write_text("protocol = 'fastcgi'\n")
    with pytest.raises(ConfigError, match="protocol .*expected 'http' or 'uwsgi'"):
        Config("app:x", config_file=str(path), environ={})


def test_allow_lists_from_the_environment():
    config = Config("app:x", environ={"GANNET_PROXY_ALLOW_FROM": "10.0.0.0/8, unix",
                                      "GANNET_UWSGI_ALLOW_FROM": "192.168.1.1"})
    assert config.proxy_allow_from == "10.0.0.0/8,unix"
    assert config.uwsgi_allow_from == "192.168.1.1"
    with pytest.raises(ConfigError, match="--proxy-allow-from .*'300.1.1.1' is not an IP"):
        Config("app:x", environ={"GANNET_PROXY_ALLOW_FROM": "300.1.1.1"})


def test_a_bare_path_is_a_unix_uwsgi_socket_as_uwsgi_takes_it():
    config = Config("app:x", uwsgi_socket=["/run/site/uwsgi.sock"], environ={})
    assert config.listen_addresses == [("unix:/run/site/uwsgi.sock", "uwsgi")]
    with pytest.raises(ConfigError, match="--bind: '/run/h.sock' is not HOST:PORT"):
        Config("app:x", bind=["/run/h.sock"], environ={})  # -b keeps gunicorn's forms
