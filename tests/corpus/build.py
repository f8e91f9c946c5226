"""Source of the raw-request corpus: writes ``valid/*`` and ``invalid/*`` (see README.md).

Each case is written twice: ``NAME.http`` holds the exact bytes sent on the wire, and
``NAME.json`` holds what must happen. The ``.http`` files are the corpus; this script is
how they were made and stays the readable source (every CR, LF and control byte is spelled
out below). ``python tests/corpus/build.py`` rewrites the files; ``--check`` only reports
files that differ from this source (test_corpus.py runs the check, so they cannot drift).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CRLF = "\r\n"


def req(line: str, *fields: str, body: bytes | str = b"", end: str = CRLF) -> bytes:
    """A request: request line, fields, the empty line, then ``body`` (all CRLF-ended)."""
    head = line + CRLF + "".join(f + CRLF for f in fields) + end
    if isinstance(body, str):
        body = body.encode("latin-1")
    return head.encode("latin-1") + body


def seen(method: str, path: str, headers: list[tuple[str, str]], *, query: str = "",
         body: str = "", raw_path: str | None = None, version: str = "1.1") -> dict:
    """What the echo app must see for one request (strings are latin-1 views of bytes)."""
    return {"method": method, "path": path, "raw_path": raw_path if raw_path is not None else path,
            "query_string": query, "http_version": version,
            "headers": [[n, v] for n, v in headers], "body": body}


H = ("host", "example.com")
HOST = "Host: example.com"

# ----------------------------------------------------------------------------- valid
LONG_VALUE = "v" * 8000          # name + value stays under the 8190-byte field limit
LONG_PATH = "/" + "p" * 8000     # request line stays under the 8190-byte line limit
MANY = [f"X-Field-{i:02d}: {i}" for i in range(99)]  # + Host = 100 fields, the limit

VALID: dict[str, tuple[str, bytes, dict]] = {
    "get_simple": (
        "The smallest HTTP/1.1 request.",
        req("GET / HTTP/1.1", HOST),
        {"requests": [seen("GET", "/", [H])]}),
    "get_query": (
        "Query string passed through raw; path without it.",
        req("GET /search?q=gannet&lang=en&empty= HTTP/1.1", HOST),
        {"requests": [seen("GET", "/search", [H], query="q=gannet&lang=en&empty=")]}),
    "percent_encoded_path": (
        "path is percent-decoded UTF-8; raw_path and query_string stay as sent.",
        req("GET /caf%C3%A9/a%20b/%7Euser?x=%20y&z=%C3%A9 HTTP/1.1", HOST),
        {"requests": [seen("GET", "/caf\u00e9/a b/~user", [H],
                           raw_path="/caf%C3%A9/a%20b/%7Euser", query="x=%20y&z=%C3%A9")]}),
    "percent_encoded_slash": (
        "%2F decodes into path but raw_path keeps it, so apps can tell the two apart.",
        req("GET /files/a%2Fb HTTP/1.1", HOST),
        {"requests": [seen("GET", "/files/a/b", [H], raw_path="/files/a%2Fb")]}),
    "absolute_form": (
        "absolute-form target (RFC 9112 3.2.2): path and query come from the URI.",
        req("GET http://example.com/over/there?name=ferret HTTP/1.1", HOST),
        {"requests": [seen("GET", "/over/there", [H], query="name=ferret")]}),
    "absolute_form_https_port": (
        "absolute-form with https scheme, port and no path: path is '/'.",
        req("GET https://example.com:8443?a=1 HTTP/1.1", "Host: example.com:8443"),
        {"requests": [seen("GET", "/", [("host", "example.com:8443")], query="a=1")]}),
    "options_asterisk": (
        "asterisk-form is only for OPTIONS (RFC 9112 3.2.4).",
        req("OPTIONS * HTTP/1.1", HOST),
        {"requests": [seen("OPTIONS", "*", [H])]}),
    "http10_no_host": (
        "HTTP/1.0 needs no Host; the server closes after the response.",
        req("GET /old HTTP/1.0", "User-Agent: ancient/1.0"),
        {"requests": [seen("GET", "/old", [("user-agent", "ancient/1.0")], version="1.0")],
         "close": True}),
    "http10_keep_alive": (
        "HTTP/1.0 with Connection: keep-alive stays open.",
        req("POST /form HTTP/1.0", HOST, "Connection: keep-alive", "Content-Length: 7",
            body="a=1&b=2"),
        {"requests": [seen("POST", "/form", [H, ("connection", "keep-alive"), ("content-length", "7")],
                           body="a=1&b=2", version="1.0")]}),
    "post_content_length": (
        "A Content-Length body, binary bytes included.",
        req("POST /upload HTTP/1.1", HOST, "Content-Type: application/octet-stream",
            "Content-Length: 10", body=b"\x00\x01\r\n\xff\xfe\r\nab"),
        {"requests": [seen("POST", "/upload", [H, ("content-type", "application/octet-stream"),
                                                ("content-length", "10")],
                           body=b"\x00\x01\r\n\xff\xfe\r\nab".decode("latin-1"))]}),
    "content_length_leading_zeros": (
        "Content-Length is 1*DIGIT: leading zeros are allowed; OWS around it is trimmed.",
        req("PUT /thing HTTP/1.1", HOST, "Content-Length:   005  ", body="hello"),
        {"requests": [seen("PUT", "/thing", [H, ("content-length", "005")], body="hello")]}),
    "post_empty_body": (
        "Content-Length: 0 means an empty body, not a read until close.",
        req("DELETE /item/7 HTTP/1.1", HOST, "Content-Length: 0"),
        {"requests": [seen("DELETE", "/item/7", [H, ("content-length", "0")])]}),
    "chunked_simple": (
        "Two chunks and the last chunk.",
        req("POST /chunked HTTP/1.1", HOST, "Transfer-Encoding: chunked",
            body="5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
        {"requests": [seen("POST", "/chunked", [H, ("transfer-encoding", "chunked")],
                           body="hello world")]}),
    "chunked_extensions": (
        "Chunk extensions (RFC 9112 7.1.1) are ignored, quoted values included.",
        req("POST /ext HTTP/1.1", HOST, "Transfer-Encoding: chunked",
            body='4;name=value\r\nwiki\r\n5;flag;q="a b"\r\npedia\r\n0;last=1\r\n\r\n'),
        {"requests": [seen("POST", "/ext", [H, ("transfer-encoding", "chunked")], body="wikipedia")]}),
    "chunked_trailers": (
        "Trailer fields after the last chunk are consumed and not shown as headers.",
        req("POST /trailers HTTP/1.1", HOST, "Transfer-Encoding: chunked", "Trailer: X-Checksum",
            body="3\r\nabc\r\n0\r\nX-Checksum: 900150983cd24fb0\r\nX-Other: 1\r\n\r\n"),
        {"requests": [seen("POST", "/trailers", [H, ("transfer-encoding", "chunked"),
                                                  ("trailer", "X-Checksum")], body="abc")]}),
    "chunked_hex_sizes": (
        "Chunk sizes in upper and lower case hex with leading zeros; coding name is "
        "case-insensitive.",
        req("POST /hex HTTP/1.1", HOST, "Transfer-Encoding: Chunked",
            body="000A\r\n0123456789\r\nb\r\nabcdefghijk\r\n000\r\n\r\n"),
        {"requests": [seen("POST", "/hex", [H, ("transfer-encoding", "Chunked")],
                           body="0123456789abcdefghijk")]}),
    "pipelined_gets": (
        "Three pipelined requests answered in order (RFC 9112 9.3.2).",
        req("GET /one HTTP/1.1", HOST) + req("GET /two?x HTTP/1.1", HOST)
        + req("OPTIONS /three HTTP/1.1", HOST),
        {"requests": [seen("GET", "/one", [H]), seen("GET", "/two", [H], query="x"),
                      seen("OPTIONS", "/three", [H])]}),
    "pipelined_mixed_bodies": (
        "Pipelined Content-Length, chunked and bodiless requests keep their boundaries.",
        req("POST /a HTTP/1.1", HOST, "Content-Length: 4", body="AAAA")
        + req("POST /b HTTP/1.1", HOST, "Transfer-Encoding: chunked",
              body="2\r\nBB\r\n0\r\nX-T: 1\r\n\r\n")
        + req("GET /c HTTP/1.1", HOST),
        {"requests": [seen("POST", "/a", [H, ("content-length", "4")], body="AAAA"),
                      seen("POST", "/b", [H, ("transfer-encoding", "chunked")], body="BB"),
                      seen("GET", "/c", [H])]}),
    "pipelined_then_close": (
        "Connection: close on the second request ends the connection after its response.",
        req("GET /first HTTP/1.1", HOST) + req("GET /last HTTP/1.1", HOST, "Connection: close"),
        {"requests": [seen("GET", "/first", [H]),
                      seen("GET", "/last", [H, ("connection", "close")])], "close": True}),
    "long_header_allowed": (
        "An 8000-byte field value, under the default 8190-byte field limit.",
        req("GET / HTTP/1.1", HOST, "X-Long: " + LONG_VALUE),
        {"requests": [seen("GET", "/", [H, ("x-long", LONG_VALUE)])]}),
    "long_target_allowed": (
        "An 8001-byte path, under the default 8190-byte request-line limit.",
        req(f"GET {LONG_PATH} HTTP/1.1", HOST),
        {"requests": [seen("GET", LONG_PATH, [H])]}),
    "hundred_fields": (
        "Exactly 100 fields, the default --limit-request-fields.",
        req("GET / HTTP/1.1", HOST, *MANY),
        {"requests": [seen("GET", "/", [H] + [(f"x-field-{i:02d}", str(i)) for i in range(99)])]}),
    "header_whitespace_and_case": (
        "Names are lowercased; leading and trailing OWS is trimmed; inner tabs kept; "
        "empty values and repeated fields are kept in order.",
        req("GET / HTTP/1.1", HOST, "X-Mixed-CASE:\t  a \t b  \t", "X-Empty:", "X-Dup: 1",
            "x-dup: 2"),
        {"requests": [seen("GET", "/", [H, ("x-mixed-case", "a \t b"), ("x-empty", ""),
                                        ("x-dup", "1"), ("x-dup", "2")])]}),
    "obs_text_value": (
        "obs-text (0x80-0xFF) is allowed in field values (RFC 9110 5.5).",
        req("GET / HTTP/1.1", HOST, "X-Latin: caf\xe9 \xff"),
        {"requests": [seen("GET", "/", [H, ("x-latin", "caf\xe9 \xff")])]}),
    "leading_empty_line": (
        "An empty line before the request line is ignored (RFC 9112 2.2).",
        b"\r\n" + req("GET /after-crlf HTTP/1.1", HOST),
        {"requests": [seen("GET", "/after-crlf", [H])]}),
    "expect_100_continue": (
        "Expect: 100-continue; the body still arrives (a 100 may precede the answer).",
        req("POST /continue HTTP/1.1", HOST, "Expect: 100-continue", "Content-Length: 3",
            body="yes"),
        {"requests": [seen("POST", "/continue", [H, ("expect", "100-continue"),
                                                 ("content-length", "3")], body="yes")]}),
    "methods_patch_and_custom_case": (
        "PATCH with a body; field-name with every token punctuation character.",
        req("PATCH /p HTTP/1.1", HOST, "X-!#$%&'*+-.^_`|~: tok", "Content-Length: 2", body="{}"),
        {"requests": [seen("PATCH", "/p", [H, ("x-!#$%&'*+-.^_`|~", "tok"), ("content-length", "2")],
                           body="{}")]}),
}

# --------------------------------------------------------------------------- invalid
GOOD_PREFIX = req("GET /before HTTP/1.1", HOST)

INVALID: dict[str, tuple[str, bytes, dict]] = {
    # --- message framing (request smuggling)
    "cl_and_te": ("Content-Length with Transfer-Encoding (RFC 9112 6.1).",
                  req("POST / HTTP/1.1", HOST, "Content-Length: 3", "Transfer-Encoding: chunked",
                      body="0\r\n\r\n"), {"status": 400}),
    "te_and_cl": ("Transfer-Encoding before Content-Length.",
                  req("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked", "Content-Length: 3",
                      body="0\r\n\r\n"), {"status": 400}),
    "cl_duplicate": ("Two Content-Length fields, even equal (RFC 9112 6.3).",
                     req("POST / HTTP/1.1", HOST, "Content-Length: 3", "Content-Length: 3",
                         body="abc"), {"status": 400}),
    "cl_duplicate_differs": ("Two different Content-Length fields.",
                             req("POST / HTTP/1.1", HOST, "Content-Length: 3", "Content-Length: 5",
                                 body="abcde"), {"status": 400}),
    "cl_non_numeric": ("Content-Length is not a number.",
                       req("POST / HTTP/1.1", HOST, "Content-Length: abc", body="abc"),
                       {"status": 400}),
    "cl_plus_sign": ("Content-Length with a sign.",
                     req("POST / HTTP/1.1", HOST, "Content-Length: +3", body="abc"), {"status": 400}),
    "cl_negative": ("Negative Content-Length.",
                    req("POST / HTTP/1.1", HOST, "Content-Length: -1", body="abc"), {"status": 400}),
    "cl_comma_list": ("Content-Length as a list.",
                      req("POST / HTTP/1.1", HOST, "Content-Length: 3, 3", body="abc"), {"status": 400}),
    "cl_inner_space": ("Content-Length with a space inside the number.",
                       req("POST / HTTP/1.1", HOST, "Content-Length: 1 2", body="abc"), {"status": 400}),
    "cl_hex": ("Content-Length in hex.",
               req("POST / HTTP/1.1", HOST, "Content-Length: 0x3", body="abc"), {"status": 400}),
    "cl_overflow": ("Content-Length beyond 64 bits.",
                    req("POST / HTTP/1.1", HOST, "Content-Length: 99999999999999999999999",
                        body="abc"), {"status": 400}),
    "cl_over_body_limit": ("Content-Length above --limit-request-body (default 1 GiB).",
                           req("POST / HTTP/1.1", HOST, "Content-Length: 2000000000", body="abc"),
                           {"status": 413}),
    "te_unknown_then_chunked": ("A coding we cannot decode before chunked (RFC 9112 6.1: 501).",
                                req("POST / HTTP/1.1", HOST, "Transfer-Encoding: gzip, chunked",
                                    body="0\r\n\r\n"), {"status": 501}),
    "te_not_chunked": ("Transfer-Encoding without chunked: length unknowable, RFC 9112 6.3 "
                       "says the server MUST answer 400 and close.",
                       req("POST / HTTP/1.1", HOST, "Transfer-Encoding: gzip", body="abc"),
                       {"status": 400}),
    "te_chunked_not_last": ("chunked is not the final coding (RFC 9112 6.3: MUST 400).",
                            req("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked, gzip",
                                body="0\r\n\r\n"), {"status": 400}),
    "te_chunked_twice": ("chunked applied twice (RFC 9112 6.1: MUST NOT).",
                         req("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked",
                             "Transfer-Encoding: chunked", body="0\r\n\r\n"), {"status": 400}),
    "te_in_http10": ("Transfer-Encoding in an HTTP/1.0 request: framing is faulty "
                     "(RFC 9112 6.1: MUST treat as faulty and close).",
                     req("POST / HTTP/1.0", "Transfer-Encoding: chunked", body="3\r\nabc\r\n0\r\n\r\n"),
                     {"status": 400}),
    # --- chunked body
    "chunk_size_not_hex": ("Chunk size is not hex.",
                           req("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked",
                               body="zz\r\nhello\r\n0\r\n\r\n"), {"status": 400}),
    "chunk_size_overflow": ("Chunk size beyond 64 bits.",
                            req("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked",
                                body="fffffffffffffffffffff\r\nhello\r\n0\r\n\r\n"), {"status": 400}),
    "chunk_size_negative": ("Chunk size with a sign.",
                            req("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked",
                                body="-5\r\nhello\r\n0\r\n\r\n"), {"status": 400}),
    "chunk_missing_crlf": ("Chunk data not followed by CRLF.",
                           req("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked",
                               body="5\r\nhelloXX0\r\n\r\n"), {"status": 400}),
    "chunk_data_longer": ("Chunk data longer than its size; the next line is not a size.",
                          req("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked",
                              body="3\r\nhello\r\n0\r\n\r\n"), {"status": 400}),
    "chunk_bare_lf": ("Chunk lines ended by bare LF.",
                      req("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked",
                          body="5\nhello\n0\n\n"), {"status": 400}),
    "chunk_ext_control": ("NUL inside a chunk extension.",
                          req("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked",
                              body="5;a\x00b\r\nhello\r\n0\r\n\r\n"), {"status": 400}),
    "trailer_bad_name": ("Trailer field with a space in its name.",
                         req("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked",
                             body="0\r\nX Bad: 1\r\n\r\n"), {"status": 400}),
    # --- field syntax
    "obs_fold": ("Obsolete line folding (RFC 9112 5.2: reject with 400).",
                 req("GET / HTTP/1.1", HOST, "X-Folded: first", " second"), {"status": 400}),
    "value_nul": ("NUL in a field value (RFC 9110 5.5).",
                  req("GET / HTTP/1.1", HOST, "X-A: b\x00c"), {"status": 400}),
    "value_soh": ("\\x01 in a field value.",
                  req("GET / HTTP/1.1", HOST, "X-A: b\x01c"), {"status": 400}),
    "value_del": ("DEL in a field value.",
                  req("GET / HTTP/1.1", HOST, "X-A: b\x7fc"), {"status": 400}),
    "value_bare_cr": ("Bare CR in a field value (RFC 9112 2.2).",
                      req("GET / HTTP/1.1", HOST, "X-A: b\rc"), {"status": 400}),
    "value_bare_lf": ("Bare LF inside a field value, a smuggling vector.",
                      req("GET / HTTP/1.1", HOST, "X-A: b\nX-Injected: c"), {"status": 400}),
    "line_bare_cr": ("Request line ended by bare CR.",
                     b"GET / HTTP/1.1\rHost: example.com\r\n\r\n", {"status": 400}),
    "head_bare_lf": ("Every line ended by bare LF.",
                     b"GET / HTTP/1.1\nHost: example.com\n\n", {"status": 400}),
    "space_before_colon": ("Whitespace between name and colon (RFC 9112 5.1: MUST 400).",
                           req("GET / HTTP/1.1", HOST, "X-A : b"), {"status": 400}),
    "empty_field_name": ("A field line starting with a colon.",
                         req("GET / HTTP/1.1", HOST, ": b"), {"status": 400}),
    "field_without_colon": ("A field line without a colon.",
                            req("GET / HTTP/1.1", HOST, "NoColonHere"), {"status": 400}),
    "field_name_not_token": ("'@' is not a token character.",
                             req("GET / HTTP/1.1", HOST, "X@A: b"), {"status": 400}),
    "whitespace_before_first_field": ("Whitespace before the first field line (RFC 9112 2.2).",
                                      req("GET / HTTP/1.1", " " + HOST), {"status": 400}),
    # --- request line
    "method_not_token": ("'(' is not a token character: a malformed request line, not an "
                         "unknown method (RFC 9112 3: 400).",
                         req("G(T / HTTP/1.1", HOST), {"status": 400}),
    "method_unknown": ("A well-formed method the server does not implement (RFC 9110 9.1: 501).",
                       req("BREW /pot HTTP/1.1", HOST), {"status": 501}),
    "target_nul": ("NUL in the request target.",
                   req("GET /a\x00b HTTP/1.1", HOST), {"status": 400}),
    "target_soh": ("\\x01 in the request target.",
                   req("GET /a\x01b HTTP/1.1", HOST), {"status": 400}),
    "target_del": ("DEL in the request target.",
                   req("GET /a\x7fb HTTP/1.1", HOST), {"status": 400}),
    "target_space": ("A space inside the target makes the line three-plus words.",
                     req("GET /a b HTTP/1.1", HOST), {"status": 400}),
    "target_bad_scheme": ("absolute-form with a scheme other than http(s).",
                          req("GET ftp://example.com/ HTTP/1.1", HOST), {"status": 400}),
    "version_http2": ("An HTTP/2.0 request line over HTTP/1.x (RFC 9110 15.6.6: 505).",
                      req("GET / HTTP/2.0", HOST), {"status": 505}),
    "version_http2_keep_alive": ("HTTP/2.0 asking for keep-alive: llhttp keeps it alive, it is still 505.",
                                 req("GET / HTTP/2.0", HOST, "Connection: keep-alive"), {"status": 505}),
    "version_http09_keep_alive": ("HTTP/0.9 asking for keep-alive is still refused.",
                                  req("GET / HTTP/0.9", HOST, "Connection: keep-alive"), {"status": 400}),
    "version_http09": ("An explicit HTTP/0.9 version.",
                       req("GET / HTTP/0.9", HOST), {"status": 400}),
    "version_http09_simple": ("An HTTP/0.9 simple request (no version at all).",
                              b"GET /\r\n\r\n", {"status": 400}),
    "version_lowercase": ("The version name is case-sensitive (RFC 9112 2.3).",
                          req("GET / http/1.1", HOST), {"status": 400}),
    # --- Host (RFC 9112 3.2)
    "host_missing": ("HTTP/1.1 without Host.", req("GET / HTTP/1.1", "Accept: */*"),
                     {"status": 400}),
    "host_twice": ("Two Host fields.", req("GET / HTTP/1.1", HOST, "Host: other.example"),
                   {"status": 400}),
    "host_invalid": ("A Host value that is not uri-host [ \":\" port ] (RFC 9112 3.2: MUST 400).",
                     req("GET / HTTP/1.1", "Host: exa mple.com"), {"status": 400}),
    # --- limits (defaults: line 8190, field 8190, 100 fields)
    "line_too_long": ("Request line over --limit-request-line.",
                      req("GET /" + "a" * 9000 + " HTTP/1.1", HOST), {"status": 414}),
    "field_too_long": ("One field over --limit-request-field-size.",
                       req("GET / HTTP/1.1", HOST, "X-Big: " + "b" * 9000), {"status": 431}),
    "too_many_fields": ("101 fields, over --limit-request-fields.",
                        req("GET / HTTP/1.1", HOST, *[f"X-F{i}: v" for i in range(100)]),
                        {"status": 431}),
    "expect_unknown": ("An expectation the server cannot meet (RFC 9110 10.1.1: 417).",
                       req("POST / HTTP/1.1", HOST, "Expect: 200-ok", "Content-Length: 1", body="x"),
                       {"status": 417}),
    # --- a refusal after a good pipelined request
    "pipelined_good_then_bad": ("The first request is answered, the second refused.",
                                GOOD_PREFIX + req("GET / HTTP/1.1", HOST, "X-A: b\x00c"),
                                {"status": 400, "answered_before": 1}),
}


# Refused only once the body is being read: the app has already been called (ASGI streams
# request bodies) and must see http.disconnect instead of a complete request.
IN_BODY = {name for name in INVALID if name.startswith("chunk_")} | {"trailer_bad_name"}
for _name in IN_BODY:
    INVALID[_name][2]["in_body"] = True


def expected_files() -> dict[Path, bytes]:
    files: dict[Path, bytes] = {}
    for kind, cases in (("valid", VALID), ("invalid", INVALID)):
        for name, (description, data, expect) in cases.items():
            files[HERE / kind / f"{name}.http"] = data
            meta = {"description": description, **expect}
            files[HERE / kind / f"{name}.json"] = (json.dumps(meta, indent=2, ensure_ascii=True)
                                                  + "\n").encode()
    return files


def check() -> list[str]:
    """Names of files that are missing, stale, or no longer produced by this script."""
    files = expected_files()
    problems = [str(p.relative_to(HERE)) for p, data in files.items()
                if not p.exists() or p.read_bytes() != data]
    for kind in ("valid", "invalid"):
        for path in (HERE / kind).glob("*"):
            if path not in files:
                problems.append(f"{path.relative_to(HERE)} (not produced by build.py)")
    return problems


def main() -> int:
    if "--check" in sys.argv[1:]:
        problems = check()
        for problem in problems:
            print("out of date:", problem)
        return 1 if problems else 0
    for path, data in expected_files().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    print(f"wrote {len(VALID)} valid and {len(INVALID)} invalid cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
