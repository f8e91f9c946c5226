"""A config file whose hooks raise: the master logs them and serves on
(tests/supervisor/test_python_config.py)."""
import os

bind = os.environ["PYCONF_BIND"]
workers = 1


def when_ready(server):
    raise RuntimeError("when_ready hook is broken")


def post_fork(server, worker):
    raise RuntimeError("post_fork hook is broken")


def child_exit(server, worker):
    raise RuntimeError("child_exit hook is broken")
