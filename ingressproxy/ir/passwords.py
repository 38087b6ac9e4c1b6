"""Password hashes as htpasswd files hold them, checked as nginx's auth_basic and Traefik's
basicAuth check them: bcrypt ($2y$, $2a$, $2b$, the `bcrypt` library), Apache's apr1 and
MD5-crypt ($apr1$, $1$), SHA-crypt ($5$, $6$, with rounds=), and RFC 2307's {SHA}, {SSHA}
and {PLAIN}. Every comparison is constant-time (hmac.compare_digest).

Flow: a front-end reads the users of a Secret (`parse_htpasswd`), refusing hashes no format
here reads (`supported`); the BasicAuth filter calls `verify` per request. Pure; no I/O.
The crypt algorithms are written here from their published descriptions (Poul-Henning
Kamp's MD5-crypt, Ulrich Drepper's SHA-crypt): Python's own `crypt` module is deprecated and
gone from 3.13, and no maintained library covers them all.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable

import bcrypt

__all__ = ["parse_htpasswd", "supported", "verify"]

_ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _b64_from_24bit(b2: int, b1: int, b0: int, n: int) -> str:
    w = (b2 << 16) | (b1 << 8) | b0
    out = []
    for _ in range(n):
        out.append(_ITOA64[w & 0x3F])
        w >>= 6
    return "".join(out)


def _md5_crypt(password: bytes, salt: bytes, magic: bytes) -> str:
    """MD5-crypt ($1$) and Apache's variant ($apr1$), as FreeBSD and Apache define them."""
    salt = salt[:8]
    ctx = hashlib.md5(password + magic + salt)
    final = hashlib.md5(password + salt + password).digest()
    for pl in range(len(password), 0, -16):
        ctx.update(final[: min(pl, 16)])
    i = len(password)
    while i:
        ctx.update(b"\0" if i & 1 else password[:1])
        i >>= 1
    final = ctx.digest()
    for i in range(1000):
        c = hashlib.md5()
        c.update(password if i & 1 else final)
        if i % 3:
            c.update(salt)
        if i % 7:
            c.update(password)
        c.update(final if i & 1 else password)
        final = c.digest()
    f = final
    text = (
        _b64_from_24bit(f[0], f[6], f[12], 4)
        + _b64_from_24bit(f[1], f[7], f[13], 4)
        + _b64_from_24bit(f[2], f[8], f[14], 4)
        + _b64_from_24bit(f[3], f[9], f[15], 4)
        + _b64_from_24bit(f[4], f[10], f[5], 4)
        + _b64_from_24bit(0, 0, f[11], 2)
    )
    return f"{magic.decode()}{salt.decode('latin-1')}${text}"


# SHA-crypt's byte order of the final digest in its base-64 text, per digest size.
_SHA256_ORDER = [(0, 10, 20), (21, 1, 11), (12, 22, 2), (3, 13, 23), (24, 4, 14), (15, 25, 5),
                 (6, 16, 26), (27, 7, 17), (18, 28, 8), (9, 19, 29)]  # fmt: skip
_SHA512_ORDER = [(0, 21, 42), (22, 43, 1), (44, 2, 23), (3, 24, 45), (25, 46, 4), (47, 5, 26),
                 (6, 27, 48), (28, 49, 7), (50, 8, 29), (9, 30, 51), (31, 52, 10), (53, 11, 32),
                 (12, 33, 54), (34, 55, 13), (56, 14, 35), (15, 36, 57), (37, 58, 16),
                 (59, 17, 38), (18, 39, 60), (40, 61, 19), (62, 20, 41)]  # fmt: skip


def _sha_crypt(password: bytes, setting: str, magic: str) -> str | None:
    """SHA-crypt ($5$ SHA-256, $6$ SHA-512) as Drepper's specification defines it."""
    digest: Callable[[bytes], hashlib._Hash] = hashlib.sha256 if magic == "5" else hashlib.sha512
    size = 32 if magic == "5" else 64
    rest = setting[len(magic) + 2 :]
    rounds = 5000
    custom = False
    if rest.startswith("rounds="):
        head, _, rest = rest.partition("$")
        try:
            rounds = max(1000, min(999_999_999, int(head[7:])))
        except ValueError:
            return None
        custom = True
    salt = rest.split("$", 1)[0][:16].encode("latin-1")
    b = digest(password + salt + password).digest()
    a = digest(password + salt)
    n = len(password)
    while n > size:
        a.update(b)
        n -= size
    a.update(b[:n])
    n = len(password)
    while n:
        a.update(b if n & 1 else password)
        n >>= 1
    a_sum = a.digest()
    dp = digest(password * len(password)).digest()
    p = (dp * (len(password) // size + 1))[: len(password)]
    ds = digest(salt * (16 + a_sum[0])).digest()
    s = (ds * (len(salt) // size + 1))[: len(salt)]
    c = a_sum
    for i in range(rounds):
        h = digest(b"")
        h.update(p if i & 1 else c)
        if i % 3:
            h.update(s)
        if i % 7:
            h.update(p)
        h.update(c if i & 1 else p)
        c = h.digest()
    order = _SHA256_ORDER if magic == "5" else _SHA512_ORDER
    text = "".join(_b64_from_24bit(c[x], c[y], c[z], 4) for x, y, z in order)
    if magic == "5":
        text += _b64_from_24bit(0, c[31], c[30], 3)
    else:
        text += _b64_from_24bit(0, 0, c[63], 2)
    prefix = f"${magic}$" + (f"rounds={rounds}$" if custom else "")
    return f"{prefix}{salt.decode('latin-1')}${text}"


def supported(hashed: str) -> bool:
    """Whether `verify` can read this hash (else no password matches it)."""
    return hashed.startswith(
        ("$2y$", "$2a$", "$2b$", "$apr1$", "$1$", "$5$", "$6$", "{SHA}", "{SSHA}", "{PLAIN}")
    )


def verify(password: str, hashed: str) -> bool:
    """Whether `password` matches `hashed`; False for formats `supported` refuses."""
    raw = password.encode("utf-8")
    if hashed.startswith(("$2y$", "$2a$", "$2b$")):
        try:
            # The library speaks $2b$; $2y$ is the same algorithm under PHP's name.
            return bcrypt.checkpw(raw, ("$2b$" + hashed[4:]).encode("ascii"))
        except ValueError:
            return False
    computed: str | None = None
    if hashed.startswith("$apr1$"):
        computed = _md5_crypt(raw, hashed[6:].split("$", 1)[0].encode("latin-1"), b"$apr1$")
    elif hashed.startswith("$1$"):
        computed = _md5_crypt(raw, hashed[3:].split("$", 1)[0].encode("latin-1"), b"$1$")
    elif hashed.startswith(("$5$", "$6$")):
        computed = _sha_crypt(raw, hashed, hashed[1])
    elif hashed.startswith("{SHA}"):
        computed = "{SHA}" + base64.b64encode(hashlib.sha1(raw).digest()).decode()
    elif hashed.startswith("{SSHA}"):
        try:
            blob = base64.b64decode(hashed[6:], validate=True)
        except ValueError:
            return False
        salted = hashlib.sha1(raw + blob[20:]).digest() + blob[20:]
        computed = "{SSHA}" + base64.b64encode(salted).decode()
    elif hashed.startswith("{PLAIN}"):
        computed = "{PLAIN}" + password
    if computed is None:
        return False
    return hmac.compare_digest(computed.encode("utf-8"), hashed.encode("utf-8"))


def parse_htpasswd(text: str) -> tuple[dict[str, str], list[int]]:
    """`user:hash` lines (blank lines and `#` comments skipped, as nginx's reader does) ->
    users, and the 1-based numbers of the lines that are not `user:hash`. A repeated user
    keeps its first line, the one nginx finds first."""
    users: dict[str, str] = {}
    bad: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not user or not hashed:
            bad.append(number)
            continue
        users.setdefault(user, hashed.split(":", 1)[0])
    return users, bad
