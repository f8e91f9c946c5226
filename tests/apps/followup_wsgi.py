"""WSGI app for tests/e2e/test_review_wsgi_budget.py (run with --interface wsgi).

/sleep?s=S   prints 'followup-sleep started', sleeps S seconds, answers "slept"
/len         reads the whole body and answers its length
"""
import time


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/sleep":
        print("followup-sleep started", flush=True)
        time.sleep(float(environ["QUERY_STRING"].partition("=")[2] or 1))
        body = b"slept"
    else:
        body = str(len(environ["wsgi.input"].read())).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
