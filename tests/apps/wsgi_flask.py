"""A plain Flask app, served unchanged (but wrapped in wsgiref's validator):
uploads through request.files, send_file, a streamed response, JSON. ``probe_app`` adds
``/probe`` outside Flask: does this request see a Flask request context it never pushed?"""
from __future__ import annotations

import hashlib
import os
from wsgiref.validate import validator

from flask import (Flask, Response, has_request_context, jsonify, request, send_file,
                   stream_with_context)

flask_app = Flask(__name__)


@flask_app.get("/")
def index():
    return "flask says hi"


@flask_app.post("/upload")
def upload():
    stored = request.files["file"]
    data = stored.read()
    return jsonify(name=stored.filename, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                   field=request.form.get("field"))


@flask_app.get("/download")
def download():
    return send_file(os.environ["FLASK_DOWNLOAD"], mimetype="application/octet-stream")


@flask_app.get("/stream")
def stream():
    def generate():
        for index in range(5):
            yield f"part {index}\n"
    return Response(stream_with_context(generate()), mimetype="text/plain")


@flask_app.get("/big-stream")
def big_stream():
    """4 MiB through stream_with_context; every block reads the request (its context must
    follow the generator to whichever thread resumes it)."""
    def generate():
        for index in range(64):
            yield (f"{request.args['tag']} {index} ".encode() * 8192)[:65536]
    return Response(stream_with_context(generate()), mimetype="application/octet-stream")


@flask_app.post("/json")
def echo_json():
    return jsonify(got=request.get_json(), args=request.args.to_dict())


def _server_input(wsgi_app):
    """wsgiref's validator predates PEP 3333's read() without a size, which werkzeug uses
    when wsgi.input_terminated is set; hand Flask the server's own stream (it is checked
    in tests/wsgi/test_wsgi_spec.py), the validator still checks everything else."""
    def inner(environ, start_response):
        stream = environ["wsgi.input"]
        environ["wsgi.input"] = getattr(stream, "input", stream)
        return wsgi_app(environ, start_response)
    return inner


app = validator(_server_input(flask_app))


def raw_app(environ, start_response):
    """Flask itself, unwrapped: send_file's file_wrapper reaches the server directly."""
    return flask_app(environ, start_response)


def probe_app(environ, start_response):
    if environ["PATH_INFO"] == "/probe":
        body = b"leaked" if has_request_context() else b"clean"
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    return flask_app(environ, start_response)
