"""wsgi.input over a body held as several blocks (the sans-I/O piece, unit-tested on top
of the black-box tests): every read style must see exactly the bytes, across block edges."""
import io
import random

import pytest

from gannet.wsgi.body import BufferInput, BufferPool, ChunksRaw


def _split(data: bytes, rng: random.Random) -> list[bytes]:
    chunks, position = [], 0
    while position < len(data):
        size = rng.choice([1, 3, 10, 100, 5000])
        chunks.append(data[position:position + size])
        position += size
    return chunks


@pytest.mark.parametrize("seed", range(5))
def test_every_read_style_sees_the_bytes(seed):
    rng = random.Random(seed)
    data = b"".join(b"line %d %s\n" % (i, b"x" * rng.randrange(200)) for i in range(300)) + b"tail"

    def stream():
        return io.BufferedReader(ChunksRaw(_split(data, rng)), 65536)

    assert stream().read() == data
    assert stream().readlines() == io.BytesIO(data).readlines()
    assert list(stream()) == list(io.BytesIO(data))
    reader, pieces = stream(), []
    while True:
        piece = reader.read(rng.choice([1, 7, 4096, 100_000]))
        if not piece:
            break
        pieces.append(piece)
    assert b"".join(pieces) == data
    reader = stream()
    first = reader.readline()
    assert first + reader.read() == data


def _random_ops(reader, reference, rng: random.Random) -> None:
    """Drive ``reader`` and an io.BytesIO with the same random calls; they must agree."""
    for _ in range(400):
        op = rng.choice(["read", "read_all", "read_none", "readline", "readline_n", "readlines"])
        size = rng.choice([0, 1, 2, 7, 100, 4096, 70_000])
        if op == "read":
            got, want = reader.read(size), reference.read(size)
        elif op == "read_all":
            got, want = reader.read(), reference.read()
        elif op == "read_none":
            got, want = reader.read(None), reference.read(None)
        elif op == "readline":
            got, want = reader.readline(), reference.readline()
        elif op == "readline_n":
            got, want = reader.readline(size), reference.readline(size)
        else:
            got, want = reader.readlines(size), reference.readlines(size)
        assert got == want, op
        assert all(type(piece) is bytes for piece in (got if isinstance(got, list) else [got]))
        if not want and op != "readline_n" and size:
            return


@pytest.mark.parametrize("seed", range(8))
def test_buffer_input_reads_like_bytesio(seed):
    """BufferInput (a body the kernel wrote into one pooled buffer) must read exactly like a
    file, and never past the body's end into whatever the reused buffer held before."""
    rng = random.Random(seed)
    data = b"".join(b"row %d %s\n" % (i, b"y" * rng.randrange(300)) for i in range(800))
    data += b"no final newline" if seed % 2 else b""
    buffer = bytearray(data + b"\nSTALE BYTES FROM AN EARLIER UPLOAD\n" * 50)
    _random_ops(BufferInput(buffer, len(data)), io.BytesIO(data), rng)
    reader = BufferInput(buffer, len(data))
    assert list(reader) == list(io.BytesIO(data))
    assert BufferInput(buffer, len(data)).read() == data


def test_buffer_input_detached_reads_nothing():
    reader = BufferInput(bytearray(b"secret\nnext body"), 6)
    assert reader.readline() == b"secret"
    reader.detach()  # the request ended; the buffer goes back to the pool
    assert (reader.read(), reader.readline(), reader.readlines(), list(reader)) == (b"", b"", [], [])


def test_buffer_pool_reuses_and_stays_bounded():
    pool = BufferPool(keep=1000)
    first = pool.take(400)
    pool.give(first)
    assert pool.take(300) is first  # fits: reused
    pool.give(first)
    assert pool.take(100) is not first  # would sit mostly idle: a fresh one
    pool.give(bytearray(700))
    assert pool.kept <= 1000
    pool.give(bytearray(5000))  # larger than the pool: dropped
    assert pool.kept <= 1000
