"""wsgi.input over a body held as several blocks (the sans-I/O piece, unit-tested on top
of the black-box tests): every read style must see exactly the bytes, across block edges."""
import io
import random

import pytest

from gannet.wsgi.cycle import _ChunksRaw


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
        return io.BufferedReader(_ChunksRaw(_split(data, rng)), 65536)

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
