"""W3 for Hamilton: ``make_bytes`` makes an n-byte value, ``size_of`` returns its length."""


def make_bytes(n: int) -> bytes:
    return bytes(range(256)) * (n // 256)


def size_of(make_bytes: bytes) -> int:
    return len(make_bytes)
