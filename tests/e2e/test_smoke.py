import httpx

from conftest import raw_request


def test_hello_and_keep_alive(gannet_server):
    server = gannet_server("basic:app")
    with httpx.Client(base_url=server.url) as client:
        for _ in range(3):
            response = client.get("/")
            assert response.status_code == 200
            assert response.text == "hello"
            assert response.headers["server"] == "gannet"
            assert "date" in response.headers


def test_refuses_cl_and_te(gannet_server):
    server = gannet_server("basic:app")
    reply = raw_request(server, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                                b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert b"connection: close" in reply
    server.wait_for_log("refused request")
