"""Vectorised ASCII formatting of numbers for the OBJ writer: whole chunks of lines at a time.

Numbers become digits with 4-digit lookup tables (one uint32 gather per 4 digits), lines are
assembled in a (rows, width) uint8 matrix and written as one buffer. Floats are fixed-point with
a space-padded integer part (so every line of a chunk has the same width and no compaction is
needed); integers (face indices) are exact, with no padding and no leading zeros.
"""
from __future__ import annotations

import numpy as np

#: "0000".."9999" as little-endian uint32: the 4 ASCII bytes of each number in order.
_LUT4 = np.frombuffer(b"".join(b"%04d" % i for i in range(10000)), dtype=np.uint32)
SPACE, MINUS, DOT, SLASH, NEWLINE = 32, 45, 46, 47, 10


def digit_count(values: np.ndarray, most: int) -> np.ndarray:
    """Decimal digits of non-negative integers (at least 1), for values below 10**most."""
    n = np.ones(values.shape, np.uint8)
    for k in range(1, most):
        n += values >= 10**k
    return n


def _width(largest: int) -> int:
    return max(1, len(str(int(largest))))


def digits(values: np.ndarray, width: int) -> np.ndarray:
    """(n, width) uint8 ASCII digits of non-negative integers below 10**width, zero-padded (a view)."""
    blocks = (width + 3) // 4
    out = np.empty((len(values), blocks), np.uint32)
    q = values
    for b in range(blocks - 1, 0, -1):
        r = q % 10000
        q = q // 10000
        out[:, b] = _LUT4[r]
    out[:, 0] = _LUT4[q]
    return out.view(np.uint8).reshape(len(values), 4 * blocks)[:, 4 * blocks - width:]


def float_fields(values: np.ndarray, decimals: int = 6) -> np.ndarray:
    """(n, w) uint8: each value as " [-]int.frac", the integer part right-aligned in spaces."""
    x = np.asarray(values, dtype=np.float64).ravel()
    scale = 10**decimals
    q = np.abs(x) * scale
    np.rint(q, out=q)
    q = q.astype(np.int64)
    ip = q // scale
    fp = q - ip * scale
    width = _width(ip.max()) if len(ip) else 1
    field = np.empty((len(x), 3 + width + decimals), np.uint8)
    field[:, 0] = SPACE
    field[:, 1] = SPACE
    field[:, 2:2 + width] = digits(ip, width)
    field[:, 2 + width] = DOT
    field[:, 3 + width:] = digits(fp, decimals)
    nd = digit_count(ip, width) if width > 1 else np.ones(len(x), np.uint8)
    for j in range(width - 1):  # leading zeros of the integer part become spaces
        col = field[:, 2 + j]
        col[nd < width - j] = SPACE
    neg = np.flatnonzero(np.signbit(x) & (q > 0))
    if len(neg):
        field[neg, 1 + width - nd[neg].astype(np.int64)] = MINUS
    return field


def float_lines(prefix: bytes, values: np.ndarray, decimals: int = 6) -> bytes:
    """``prefix`` then each row of (n, k) ``values`` as fixed-point fields, one line per row."""
    n, k = values.shape
    fields = float_fields(values, decimals)
    w = fields.shape[1]
    lines = np.empty((n, len(prefix) + k * w + 1), np.uint8)
    lines[:, :len(prefix)] = np.frombuffer(prefix, np.uint8)
    lines[:, len(prefix):-1] = fields.reshape(n, k * w)
    lines[:, -1] = NEWLINE
    return lines.tobytes()


def face_lines(faces: np.ndarray, repeat: int = 3, base: int = 1) -> bytes:
    """OBJ face lines "f a/a/a b/b/b c/c/c" (``repeat`` copies of each index, 1-based by default).

    Every line of a chunk has the same width when all its indices have as many digits (the usual
    case: grid faces come in index order); otherwise the zero padding is squeezed out."""
    f = np.asarray(faces, dtype=np.int64) + base
    n, k = f.shape
    width = _width(f.max()) if n else 1
    d = digits(f.ravel(), width).reshape(n, k, width)
    token = repeat * width + (repeat - 1)
    line_w = 1 + k * (1 + token) + 1
    lines = np.empty((n, line_w), np.uint8)
    lines[:, 0] = ord("f")
    lines[:, -1] = NEWLINE
    for c in range(k):
        start = 1 + c * (1 + token)
        lines[:, start] = SPACE
        for r in range(repeat):
            at = start + 1 + r * (width + 1)
            lines[:, at:at + width] = d[:, c]
            if r < repeat - 1:
                lines[:, at + width] = SLASH
    if n == 0 or f.min() >= 10 ** (width - 1):
        return lines.tobytes()
    keep = np.ones((n, line_w), bool)
    nd = digit_count(f, width)
    for c in range(k):
        start = 1 + c * (1 + token)
        for r in range(repeat):
            at = start + 1 + r * (width + 1)
            for j in range(width - 1):
                keep[:, at + j] = nd[:, c] >= width - j
    return lines[keep].tobytes()
