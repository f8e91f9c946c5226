"""A gunicorn.conf.py as deployments write it, used unchanged as a Gannet config file
(tests/supervisor/test_python_config.py). The hooks append one line each to
$PYCONF_MARKERS: '<hook> <os.getpid()> <what the hook was given>'."""
import multiprocessing
import os

wsgi_app = "pyconf_app:app"
bind = os.environ["PYCONF_BIND"]
workers = int(os.environ.get("PYCONF_WORKERS", "2"))
worker_class = "uvicorn.workers.UvicornWorker"
keepalive = 7
graceful_timeout = 12
max_requests = 0
preload_app = False
accesslog = "-"
loglevel = "INFO"
raw_env = ["PYCONF_FROM_RAW_ENV=from-raw-env"]
cpu_count = multiprocessing.cpu_count()  # a helper variable: not a setting, ignored


def _mark(line):
    with open(os.environ["PYCONF_MARKERS"], "a") as markers:
        markers.write(line + "\n")


def when_ready(server):
    server.log.info("when_ready: the master is ready")
    _mark(f"when_ready {os.getpid()} {server.pid} {server.cfg.workers} "
          f"{server.cfg.keepalive} {server.cfg.graceful_timeout}")


def post_fork(server, worker):
    worker.log.info("post_fork: worker %s (age %s) forked", worker.pid, worker.age)
    _mark(f"post_fork {os.getpid()} {worker.pid} {worker.age}")


def on_exit(server):
    _mark(f"on_exit {os.getpid()}")
