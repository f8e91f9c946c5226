"""A Flask app file as Flask's docs write it: ``app = Flask(__name__)``. Flask finds its
templates next to this file through sys.modules[__name__].__file__, so they render only if
the script's module is registered before it runs."""
from flask import Flask, render_template

app = Flask(__name__)


@app.route("/")
def index():
    return render_template("page.html", module=__name__)


@app.route("/items/<int:item>")
def item(item):
    return {"item": item, "module": __name__}
