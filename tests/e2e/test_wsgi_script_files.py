"""``gannet path/to/site.wsgi``: a mod_wsgi script file served the way mod_wsgi serves a
WSGIScriptAlias target and mod_wsgi-express serves its script argument (loading.py,
"script files"), black-box through real servers.

What mod_wsgi does, and so what is checked here: the script runs as a module named
``_mod_wsgi_`` + the MD5 of its absolute path, with ``__file__`` set, registered in
sys.modules while it runs (so pickle and Flask find it), never as ``__main__``; its
``application`` is served (``:name`` picks another, like --callable-object); nothing is
added to sys.path (mod_wsgi-express puts its working directory there, which --app-dir's
default ``.`` does). Load failures exit 4 with a message pointing into the script.
Fixtures: tests/apps/modwsgi/. Deadlines, never sleeps.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from conftest import APPS, RunningServer, require_tool, start_server
from load_errors import assert_no_gannet_frames, frames, load_error, write

pytestmark = pytest.mark.timeout(60)

MODWSGI = APPS / "modwsgi"
HELLO = MODWSGI / "hello.wsgi"
DJANGO = MODWSGI / "djangoproj"


def module_name(path: Path | str) -> str:
    """mod_wsgi's module name for a script: _mod_wsgi_ + MD5 of its full path."""
    return "_mod_wsgi_" + hashlib.md5(str(path).encode()).hexdigest()


def get(server: RunningServer, path: str = "/") -> httpx.Response:
    return httpx.get(server.url + path, timeout=10)


def get_json(server: RunningServer, path: str = "/") -> dict:
    response = get(server, path)
    assert response.status_code == 200, (response.status_code, response.text, server.log)
    return response.json()


def wait_until(predicate, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        time.sleep(0.05)


# ------------------------------------------------------------------ served like mod_wsgi


@pytest.mark.parametrize("given, cwd", [
    ("hello.wsgi", MODWSGI),             # a bare file name: it exists and ends in .wsgi
    ("./hello.wsgi", MODWSGI),
    ("modwsgi/hello.wsgi", APPS),        # relative to the working directory
    (str(HELLO), None),                  # absolute, from an unrelated directory
], ids=["bare-name", "dot-slash", "relative", "absolute"])
def test_a_script_file_is_run_as_mod_wsgi_runs_it_and_its_application_served(
        gannet_server, tmp_path, given, cwd):
    server = gannet_server(given, cwd=cwd or tmp_path)
    reply = get_json(server, "/some/path")
    assert reply["callable"] == "application"
    assert reply["name"] == module_name(HELLO)  # not __main__: the script's guard stayed off
    assert reply["file"] == str(HELLO)
    assert reply["registered"] is True  # in sys.modules: pickling its class worked too
    assert reply["path"] == "/some/path"
    assert reply["cwd"] == str(cwd or tmp_path)  # the working directory is left alone
    assert f"Loading the script file {HELLO} as module {module_name(HELLO)}" in server.log
    assert "Detected the WSGI interface" in server.log


@pytest.mark.parametrize("given", ["hello.wsgi:other", str(HELLO) + ":other"])
def test_a_callable_named_after_the_path_is_served(gannet_server, given):
    """mod_wsgi-express --callable-object / WSGICallableObject."""
    reply = get_json(gannet_server(given, cwd=MODWSGI))
    assert reply == {"callable": "other", "name": module_name(HELLO)}


def test_mounted_below_a_prefix_with_the_authorization_header_passed(gannet_server):
    """WSGIScriptAlias /site ... is --root-path /site (SCRIPT_NAME); Authorization reaches
    the app as HTTP_AUTHORIZATION, what WSGIPassAuthorization On does under mod_wsgi."""
    server = gannet_server("hello.wsgi", "--root-path", "/site", cwd=MODWSGI)
    response = httpx.get(server.url + "/site/page", headers={"Authorization": "Bearer t0ken"},
                         timeout=10)
    reply = response.json()
    assert (reply["script_name"], reply["path"]) == ("/site", "/page")
    assert reply["authorization"] == "Bearer t0ken"


def test_a_path_with_spaces(gannet_server, tmp_path):
    script = tmp_path / "my site" / "hello world.wsgi"
    script.parent.mkdir()
    shutil.copy(HELLO, script)
    reply = get_json(gannet_server("my site/hello world.wsgi", cwd=tmp_path))
    assert reply["name"] == module_name(script)
    assert reply["file"] == str(script)


def test_an_asgi_application_in_a_script_is_served_as_asgi(gannet_server, tmp_path):
    server = gannet_server(str(MODWSGI / "asgi_site.py"), cwd=tmp_path)
    response = get(server, "/ping")
    assert response.status_code == 200
    assert response.text == f"asgi /ping from {module_name(MODWSGI / 'asgi_site.py')}"
    assert "Detected the ASGI3 interface" in server.log


def test_a_flask_app_file_serves_app_and_finds_its_templates(gannet_server, tmp_path):
    """``app = Flask(__name__)``: Flask reads its root path (templates/) from
    sys.modules[__name__], so the template renders only if the script's module was
    registered before it ran; ``app`` is taken when there is no ``application``."""
    script = MODWSGI / "flaskapp" / "flask_site.py"
    server = gannet_server(str(script), cwd=tmp_path)
    page = get(server, "/")
    assert page.status_code == 200, (page.text, server.log)
    assert page.text.strip() == f"<p>flask template for {module_name(script)}</p>"
    assert get_json(server, "/items/7") == {"item": 7, "module": module_name(script)}
    assert f"No attribute given: using '{script}:app'" in server.log


def test_a_flask_app_file_named_with_its_callable(gannet_server):
    server = gannet_server("flask_site.py:app", cwd=MODWSGI / "flaskapp")
    assert get_json(server, "/items/1")["item"] == 1
    assert "No attribute given" not in server.log


@pytest.mark.parametrize("given, args, cwd", [
    # the project directory as the working directory: on sys.path (--app-dir's default
    # '.'), as mod_wsgi-express puts its --working-directory (default: where it started)
    ("mysite/wsgi.py", (), DJANGO),
    # elsewhere: --app-dir is mod_wsgi's python-path= (or the home= of --working-directory)
    (str(DJANGO / "mysite" / "wsgi.py"), ("--app-dir", str(DJANGO)), None),
    # mod_wsgi's recipe: a .wsgi that puts its project on sys.path itself
    (str(DJANGO / "apache" / "django.wsgi"), (), None),
], ids=["relative-from-project", "absolute-with-app-dir", "apache-recipe-script"])
def test_a_django_projects_wsgi_script_serves(gannet_server, tmp_path, given, args, cwd):
    server = gannet_server(given, *args, cwd=cwd or tmp_path)
    response = get(server, "/polls/3/")
    assert response.status_code == 200, (response.text, server.log)
    assert response.text == "django mysite.settings /polls/3/"


def test_a_config_files_chdir_is_mod_wsgi_express_working_directory(gannet_server, tmp_path):
    """``chdir`` in a Python config file (gunicorn's setting) changes the working directory
    and puts it on sys.path, as --working-directory does; a relative APP path is then
    resolved from there (mod_wsgi-express resolves it from where it was started)."""
    write(tmp_path / "gannet.conf.py", f"chdir = {str(DJANGO)!r}\n")
    server = gannet_server("mysite/wsgi.py", "-c", str(tmp_path / "gannet.conf.py"), cwd=tmp_path)
    response = get(server, "/")
    assert response.status_code == 200, (response.text, server.log)
    assert response.text == "django mysite.settings /"


def test_a_django_wsgi_py_without_its_project_on_sys_path_says_what_is_missing(tmp_path):
    """The script's own directory is not put on sys.path (neither mod_wsgi nor
    mod_wsgi-express does); the message points at the script's line."""
    script = DJANGO / "mysite" / "wsgi.py"
    message = load_error(str(script), cwd=tmp_path)
    assert message.startswith("Error loading app: ModuleNotFoundError: No module named 'mysite'\n"), message
    assert f"Raised while running the script '{script}'" in message
    assert frames(message)[0] == (str(script), 11), message
    assert_no_gannet_frames(message)


def test_the_scripts_directory_is_not_on_sys_path_but_app_dir_puts_it_there(gannet_server, tmp_path):
    project = tmp_path / "proj"
    write(project / "scriptfile_helper.py", "GREETING = 'from the helper'\n")
    script = write(project / "site.wsgi",
                   "from scriptfile_helper import GREETING\n\n\n"
                   "def application(environ, start_response):\n"
                   "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
                   "    return [GREETING.encode()]\n")
    message = load_error("proj/site.wsgi", cwd=tmp_path)
    assert message.startswith(
        "Error loading app: ModuleNotFoundError: No module named 'scriptfile_helper'\n"), message
    assert frames(message) == [(str(script), 1)], message

    server = gannet_server("proj/site.wsgi", "--app-dir", "proj", cwd=tmp_path)
    assert get(server).text == "from the helper"


def test_a_factory_in_a_script(gannet_server, tmp_path):
    write(tmp_path / "factory.py",
          "def create_app():\n"
          "    def application(environ, start_response):\n"
          "        start_response('200 OK', [('Content-Type', 'text/plain')])\n"
          "        return [b'built by the factory']\n"
          "    return application\n")
    server = gannet_server("./factory.py:create_app", "--factory", cwd=tmp_path)
    assert get(server).text == "built by the factory"


def test_a_name_that_is_both_a_module_and_a_file_stays_the_module(gannet_server, tmp_path):
    """``gannet mysite.wsgi`` served mysite/wsgi.py before script files existed: it still
    does, with a warning naming the file and how to ask for it; ``./mysite.wsgi`` is the file."""
    body = ("def application(environ, start_response):\n"
            "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
            "    return [{!r}]\n")
    write(tmp_path / "ambig_site" / "__init__.py", "")
    write(tmp_path / "ambig_site" / "wsgi.py", body.format(b"the module"))
    write(tmp_path / "ambig_site.wsgi", body.format(b"the file"))

    server = gannet_server("ambig_site.wsgi", cwd=tmp_path)
    assert get(server).text == "the module"
    assert (f"'ambig_site.wsgi' names both a module and the file {tmp_path / 'ambig_site.wsgi'}: "
            "serving the module, as before script files were served; write './ambig_site.wsgi' "
            "for the file") in server.log

    server = gannet_server("./ambig_site.wsgi", cwd=tmp_path)
    assert get(server).text == "the file"


SELF_IMPORTING_APP = """\
import os

with open(os.path.join(os.path.dirname(__file__), "runs.txt"), "a") as runs:
    runs.write(__name__ + "\\n")

routes = {}


def application(environ, start_response):
    handler = routes.get(environ["PATH_INFO"])
    start_response("200 OK" if handler else "404 Not Found", [("Content-Type", "text/plain")])
    return [handler() if handler else b"no route"]


import views  # noqa: E402  views.py says 'from app import routes' (Flask's views-module layout)
"""


@pytest.mark.parametrize("given", ["app.py", "./app.py"])
def test_a_script_that_its_own_modules_import_runs_once(gannet_server, tmp_path, given):
    """``gannet app.py`` where views.py does ``from app import ...`` (the working directory is
    on sys.path, --app-dir's default): ``import app`` must find the script being served, not
    run the file a second time as another module (two apps: the served one without the
    routes views.py added, two connection pools, two schedulers)."""
    write(tmp_path / "app.py", SELF_IMPORTING_APP)
    write(tmp_path / "views.py", "from app import routes\n\nroutes['/hello'] = lambda: b'hello'\n")
    server = gannet_server(given, cwd=tmp_path)
    response = get(server, "/hello")
    assert (response.status_code, response.text) == (200, "hello"), server.log
    script = tmp_path / "app.py"
    assert (tmp_path / "runs.txt").read_text().splitlines() == [module_name(script)]
    assert (f"The script file {script} is also module 'app' (what 'import app' finds): "
            "both names are this one module") in server.log


def test_a_script_not_importable_under_its_name_is_not_given_that_name(tmp_path):
    """Only the file ``import app`` would load gets the name: another directory's app.py,
    a .wsgi file (no import finds it), or a file named like a built-in module (``import``
    finds the built-in first) keeps mod_wsgi's name alone."""
    from gannet.loading import load_app

    wsgi = "def application(environ, start_response):\n    return []\n"
    elsewhere = write(tmp_path / "elsewhere" / "app.py", wsgi)
    write(tmp_path / "onpath" / "app.py", "application = None\n")
    site = write(tmp_path / "onpath" / "site.wsgi", wsgi)
    builtin = next(name for name in sys.builtin_module_names
                   if name.isidentifier() and name not in sys.modules)
    shadow = write(tmp_path / "onpath" / f"{builtin}.py", wsgi)
    sys.path.insert(0, str(tmp_path / "onpath"))
    scripts = (elsewhere, site, shadow)
    try:
        for script in scripts:
            module = sys.modules[load_app(str(script), app_dir=None).__module__]
            assert [name for name, found in list(sys.modules.items()) if found is module] \
                == [module_name(script)]
    finally:
        sys.path.remove(str(tmp_path / "onpath"))
        for script in scripts:
            sys.modules.pop(module_name(script), None)


# ------------------------------------------------------------------ workers, preload


def _loading_pids(log: str) -> list[int]:
    return [int(pid) for pid in re.findall(r"\[(\d+)\] \[INFO\] Loading the script file ", log)]


def test_each_of_two_workers_loads_the_script(gannet_server, tmp_path):
    server = gannet_server(str(HELLO), "-w", "2", cwd=tmp_path)
    wait_until(lambda: server.log.count("Listening on") >= 2, what="2 workers listening")
    pids = _loading_pids(server.log)
    assert len(pids) == 2 and len(set(pids)) == 2 and server.proc.pid not in pids, server.log
    reply = get_json(server)
    assert reply["pid"] in pids and reply["loaded_in"] == reply["pid"]


def test_preload_loads_the_script_once_in_the_master(gannet_server, tmp_path):
    server = gannet_server(str(HELLO), "-w", "2", "--preload", cwd=tmp_path)
    wait_until(lambda: server.log.count("Listening on") >= 2, what="2 workers listening")
    assert _loading_pids(server.log) == [server.proc.pid], server.log
    reply = get_json(server)
    assert reply["loaded_in"] == server.proc.pid != reply["pid"]
    assert reply["name"] == module_name(HELLO)


# ------------------------------------------------------------------ --reload

RELOADING = '''\
VERSION = "{version}"


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [VERSION.encode()]
'''


def _serves(server: RunningServer, text: str, timeout: float = 15.0) -> None:
    def answered() -> bool:
        try:
            return get(server).text == text
        except httpx.HTTPError:
            return False

    wait_until(answered, timeout, f"the answer {text!r}")


def _reloading(app: str, *args: str, cwd: Path) -> RunningServer:
    return start_server(app, "--reload", "--reload-delay", "0.1", *args, cwd=cwd)


def test_reload_serves_an_edited_script_in_the_watched_directory(tmp_path):
    script = write(tmp_path / "devsite.py", RELOADING.format(version="v1"))
    server = _reloading("devsite.py", cwd=tmp_path)
    try:
        assert get(server).text == "v1"
        write(script, RELOADING.format(version="v2"))
        _serves(server, "v2")
    finally:
        assert server.stop() == 0
    assert not (tmp_path / "__pycache__").exists()  # a script's bytecode is never written


def test_reload_serves_an_edited_wsgi_file_named_with_reload_extra_file(tmp_path):
    """Today's way to watch a script that is not ``*.py`` or lies outside --reload-dir."""
    script = write(tmp_path / "deploy" / "site.wsgi", RELOADING.format(version="v1"))
    (tmp_path / "work").mkdir()
    server = _reloading(str(script), "--reload-extra-file", str(script), cwd=tmp_path / "work")
    try:
        assert get(server).text == "v1"
        write(script, RELOADING.format(version="v2"))
        _serves(server, "v2")
    finally:
        assert server.stop() == 0


def test_reload_watches_the_script_file_wherever_it_lies(tmp_path):
    script = write(tmp_path / "deploy" / "site.wsgi", RELOADING.format(version="v1"))
    (tmp_path / "work").mkdir()
    server = _reloading(str(script), cwd=tmp_path / "work")
    try:
        assert get(server).text == "v1"
        write(script, RELOADING.format(version="v2"))
        _serves(server, "v2", timeout=8)
    finally:
        assert server.stop() == 0


# ------------------------------------------------------------------ Apache kept in front

APACHE_CONF = """
ServerRoot "{tmp}"
ServerName 127.0.0.1
PidFile "{tmp}/httpd.pid"
DefaultRuntimeDir "{tmp}"
Mutex file:{tmp} default
ErrorLog "{tmp}/error.log"
{modules}
Listen 127.0.0.1:{port}
<VirtualHost 127.0.0.1:{port}>
    # Static files stay with Apache, as they did beside WSGIScriptAlias.
    Alias /static/ "{static}/"
    <Directory "{static}">
        Require all granted
    </Directory>
    ProxyPreserveHost On
    ProxyPass /static/ !
    ProxyPass / http://127.0.0.1:{gannet}/ ttl=60
    ProxyPassReverse / http://127.0.0.1:{gannet}/
    RequestHeader set X-Forwarded-Proto "https"
</VirtualHost>
"""
APACHE_MODULES = ("mpm_event", "authz_core", "unixd", "alias", "proxy", "proxy_http", "headers")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_apache_in_front_proxies_to_the_script_and_keeps_the_static_files(gannet_server, tmp_path):
    """The docs' recipe (migrating.md, "Keeping Apache in front"): Apache serves /static/
    itself and proxies the rest to ``gannet site.wsgi``; the app sees the client's Host,
    its Authorization header and https from X-Forwarded-Proto (Apache trusted on loopback)."""
    binary = shutil.which("apache2") or shutil.which("httpd") or require_tool("apache2")
    modules_dir = Path("/usr/lib/apache2/modules")
    modules = "\n".join(f"LoadModule {name}_module {modules_dir / f'mod_{name}.so'}"
                        for name in APACHE_MODULES if (modules_dir / f"mod_{name}.so").exists())
    write(tmp_path / "static" / "site.css", "body { color: teal }\n")
    server = gannet_server(str(HELLO), "--timeout-keep-alive", "75", cwd=tmp_path)
    port = _free_port()
    conf = write(tmp_path / "apache" / "httpd.conf", APACHE_CONF.format(
        tmp=tmp_path / "apache", modules=modules, port=port, static=tmp_path / "static",
        gannet=server.port))
    check = subprocess.run([binary, "-d", str(conf.parent), "-f", str(conf), "-t"], check=False,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    apache = subprocess.Popen([binary, "-d", str(conf.parent), "-f", str(conf), "-X"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        def accepts() -> bool:
            assert apache.poll() is None, (conf.parent / "error.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            except OSError:
                return False

        wait_until(accepts, 15, "Apache accepting")
        front = f"http://127.0.0.1:{port}"
        response = httpx.get(front + "/account/", timeout=10, headers={
            "Host": "www.example.com", "Authorization": "Basic dXNlcjpwdw=="})
        assert response.status_code == 200, response.text
        reply = response.json()
        assert reply["name"] == module_name(HELLO) and reply["path"] == "/account/"
        assert (reply["host"], reply["scheme"]) == ("www.example.com", "https")
        assert reply["authorization"] == "Basic dXNlcjpwdw=="

        static = httpx.get(front + "/static/site.css", timeout=10)
        assert (static.status_code, static.text) == (200, "body { color: teal }\n")
        assert '"GET /account/ HTTP/1.1" 200' in server.log
        assert "/static/" not in server.log  # Apache answered it
    finally:
        apache.send_signal(signal.SIGTERM)
        try:
            apache.wait(timeout=10)
        except subprocess.TimeoutExpired:
            apache.kill()
            apache.wait(timeout=5)


# ------------------------------------------------------------------ load errors: exit 4


def test_a_missing_script_file(tmp_path):
    first = load_error("nowhere/site.wsgi", cwd=tmp_path).splitlines()[0]
    assert first == (f"Error loading app: script file 'nowhere/site.wsgi' not found "
                     f"(looked for {tmp_path / 'nowhere' / 'site.wsgi'})")


def test_a_missing_script_file_under_workers(tmp_path):
    first = load_error(str(tmp_path / "site.wsgi"), "-w", "2", cwd=tmp_path).splitlines()[0]
    assert first == f"Error loading app: script file '{tmp_path / 'site.wsgi'}' not found"


def test_a_missing_bare_script_name_says_neither_module_nor_file(tmp_path):
    first = load_error("nosuch_site.wsgi", cwd=tmp_path).splitlines()[0]
    assert first == ("Error loading app: could not import module 'nosuch_site.wsgi': No module "
                     "named 'nosuch_site'; no script file 'nosuch_site.wsgi' either "
                     f"(looked for {tmp_path / 'nosuch_site.wsgi'})")


def test_a_path_without_its_py_suffix_is_hinted(tmp_path):
    write(tmp_path / "src" / "webapp.py", "application = None\n")
    first = load_error("src/webapp", cwd=tmp_path).splitlines()[0]
    assert first.endswith("; did you mean 'src/webapp.py'?"), first


def test_a_directory_names_the_scripts_in_it(tmp_path):
    write(tmp_path / "deploy" / "site.wsgi", "")
    write(tmp_path / "deploy" / "wsgi.py", "")
    write(tmp_path / "deploy" / "settings.py", "")
    first = load_error("deploy/", cwd=tmp_path).splitlines()[0]
    assert first == ("Error loading app: 'deploy/' is a directory, not a script file; "
                     "script files in it: 'deploy/site.wsgi', 'deploy/wsgi.py'")


def test_a_syntax_error_in_the_script_shows_the_caret(tmp_path):
    script = write(tmp_path / "broken.wsgi", "x = 1\ndef application(environ start_response):\n    pass\n")
    message = load_error("./broken.wsgi", cwd=tmp_path)
    assert message.startswith("Error loading app: SyntaxError: "), message
    assert "Raised while running the script './broken.wsgi'" in message
    lines = message.splitlines()
    where = lines.index(f'  File "{script}", line 2')
    assert lines[where + 1].strip() == "def application(environ start_response):", message
    assert set(lines[where + 2].strip()) == {"^"}, message  # Python's own caret line
    assert lines[where + 3].startswith("SyntaxError: "), message
    assert_no_gannet_frames(message)


def test_an_exception_while_running_the_script_shows_its_frames(tmp_path):
    script = write(tmp_path / "raising.wsgi",
                   "def boot():\n    raise RuntimeError('no database configured')\n\n\nboot()\n")
    message = load_error(str(script), cwd=tmp_path)
    assert message.startswith("Error loading app: RuntimeError: no database configured\n"), message
    assert frames(message) == [(str(script), 5), (str(script), 2)], message
    assert "raise RuntimeError('no database configured')" in message  # the source line
    assert_no_gannet_frames(message)


def test_sys_exit_in_the_script_is_a_load_error(tmp_path):
    write(tmp_path / "exiting.wsgi", "import sys\nsys.exit('refusing to start')\n")
    message = load_error("./exiting.wsgi", cwd=tmp_path)
    assert message.startswith("Error loading app: SystemExit: refusing to start\n"), message


def test_a_script_without_application_lists_what_looks_like_an_app(tmp_path):
    write(tmp_path / "noapp.wsgi",
          "def api(environ, start_response):\n    return []\n\n\n"
          "def site(environ, start_response):\n    return []\n\n\nhelper = len\n")
    first = load_error("./noapp.wsgi", cwd=tmp_path).splitlines()[0]
    assert first == ("Error loading app: script './noapp.wsgi' has no 'application' or 'app' "
                     "(mod_wsgi's entry point is 'application') (tried for APP without "
                     "':attribute'): add 'application = ...' to it, or name the app as "
                     "'./noapp.wsgi:NAME'; callables in it that look like apps: "
                     "'./noapp.wsgi:api', './noapp.wsgi:site'")


def test_a_missing_named_callable_suggests_the_one_that_exists(tmp_path):
    write(tmp_path / "one.wsgi", "def site(environ, start_response):\n    return []\n")
    first = load_error("./one.wsgi:application", cwd=tmp_path).splitlines()[0]
    assert first == ("Error loading app: attribute 'application' not found in script "
                     "'./one.wsgi'; did you mean './one.wsgi:site'?")


def test_a_trailing_colon_asks_for_the_callable(tmp_path):
    write(tmp_path / "one.wsgi", "application = None\n")
    first = load_error("./one.wsgi:", cwd=tmp_path).splitlines()[0]
    assert first == ("Error loading app: APP './one.wsgi:' ends with ':': name the callable "
                     "after it, or leave the ':' out to use 'application'")


def test_a_script_that_cannot_be_read(tmp_path):
    """A path that exists but cannot be opened (a Unix socket here: even root cannot read
    it, unlike a chmod 0 file) is named with the reason."""
    import socket

    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tmp_path / "sock.wsgi"))
        first = load_error("./sock.wsgi", cwd=tmp_path).splitlines()[0]
    finally:
        sock.close()
    assert first == "Error loading app: cannot read the script file './sock.wsgi': No such device or address"


def test_the_script_leaves_no_module_behind_when_it_fails(tmp_path):
    """As PyImport_ExecCodeModuleEx: a failed script is removed from sys.modules, so a
    second load runs it again instead of returning a half-run module."""
    from gannet.loading import AppLoadError, load_app

    script = write(tmp_path / "flaky.wsgi",
                   "import os\nif os.environ.get('FLAKY_SCRIPT_FAIL'):\n    raise RuntimeError('flaky')\n"
                   "def application(environ, start_response):\n    return []\n")
    os.environ["FLAKY_SCRIPT_FAIL"] = "1"
    try:
        with pytest.raises(AppLoadError, match="RuntimeError: flaky"):
            load_app(str(script), app_dir=None)
        assert module_name(script) not in sys.modules
    finally:
        del os.environ["FLAKY_SCRIPT_FAIL"]
    try:
        app = load_app(str(script), app_dir=None)
        assert app.__module__ == module_name(script)
        assert sys.modules[module_name(script)].application is app
    finally:
        sys.modules.pop(module_name(script), None)


def test_script_file_names_the_file_for_reload(tmp_path, monkeypatch):
    """loading.script_file: what --reload must watch besides its directories."""
    from gannet.loading import script_file

    monkeypatch.chdir(tmp_path)
    write(tmp_path / "site.wsgi", "")
    assert script_file("site.wsgi") == str(tmp_path / "site.wsgi")
    assert script_file("./site.wsgi:other") == str(tmp_path / "site.wsgi")
    assert script_file("site.wsgi:other") == str(tmp_path / "site.wsgi")
    assert script_file("missing/site.wsgi") is None
    assert script_file("mysite.wsgi:application") is None
    assert script_file("main:app") is None
