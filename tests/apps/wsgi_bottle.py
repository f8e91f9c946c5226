"""A plain Bottle app, served unchanged (but wrapped in wsgiref's validator)."""
from __future__ import annotations

from wsgiref.validate import validator

import bottle

bottle_app = bottle.Bottle()


@bottle_app.get("/hello/<name>")
def hello(name):
    return f"hello {name}"


@bottle_app.post("/form")
def form():
    return {"a": bottle.request.forms.get("a"), "length": len(bottle.request.body.read())}


@bottle_app.get("/gen")
def gen():
    bottle.response.content_type = "text/plain"
    for index in range(3):
        yield f"{index};"


app = validator(bottle_app)
