"""Where a PostgreSQL store lives: the URL (libpq options plus ours: `schema`,
`reconnect_timeout`, `start_timeout`) and the LISTEN/NOTIFY channel names of a schema."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from statemachine_engine.errors import StoreError

DEFAULT_SCHEMA = "public"
DEFAULT_RECONNECT_TIMEOUT = 300.0
CONNECT_TIMEOUT = 5
_SCHEMA = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
# Options of ours in the URL query; everything else goes to libpq untouched.
_OWN_OPTIONS = ("schema", "reconnect_timeout", "start_timeout")
NETWORK_DEFAULTS: dict[str, str | int] = {
    "connect_timeout": CONNECT_TIMEOUT,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}


@dataclass(frozen=True)
class Target:
    """Where a PostgreSQL store lives: libpq connection string plus our own options."""

    url: str
    conninfo: str
    schema: str
    reconnect_timeout: float
    start_timeout: float

    @property
    def display(self) -> str:
        """The URL without its password, for messages and logs."""
        return redact(self.url)


def redact(url: str) -> str:
    """`url` with any password replaced by `***`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _seconds(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise StoreError(f"PostgreSQL URL option {name}={text!r}: expected seconds >= 0")
    return value


def parse_url(url: str) -> Target:
    """Split a `postgresql://` URL into libpq's part and ours (`schema`, `reconnect_timeout`,
    `start_timeout`)."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise StoreError(f"not a PostgreSQL URL: {redact(url)}")
    own: dict[str, str] = {}
    rest: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        (own.__setitem__(key, value) if key in _OWN_OPTIONS else rest.append((key, value)))
    schema = own.get("schema") or DEFAULT_SCHEMA
    if not _SCHEMA.match(schema):
        raise StoreError(
            f"bad schema name {schema!r} in the PostgreSQL URL: use letters, digits and _,"
            " starting with a letter or _, at most 63 characters"
        )
    conninfo = urlunsplit(
        parts._replace(scheme="postgresql", query=urlencode(rest, quote_via=quote))
    )
    return Target(
        url=url,
        conninfo=conninfo,
        schema=schema,
        reconnect_timeout=_seconds(
            "reconnect_timeout", own.get("reconnect_timeout", str(DEFAULT_RECONNECT_TIMEOUT))
        ),
        start_timeout=_seconds("start_timeout", own.get("start_timeout", "0")),
    )


class Channels:
    """LISTEN/NOTIFY channel names of one schema (NOTIFY is database-wide, so each schema
    gets its own prefix; machine names are hashed to stay valid, short identifiers)."""

    def __init__(self, schema: str) -> None:
        self.prefix = "sm_" + hashlib.md5(schema.encode(), usedforsecurity=False).hexdigest()[:10]
        self.jobs = f"{self.prefix}_jobs"
        self.realtime = f"{self.prefix}_rt"

    def machine(self, name: str) -> str:
        digest = hashlib.md5(name.encode(), usedforsecurity=False).hexdigest()[:20]
        return f"{self.prefix}_m_{digest}"
