"""Binding, tokens, Host and Origin checks, static traversal, headers (catalogue 33-36)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from statemachine_engine.monitoring.app import STATIC_DIR, static_file
from statemachine_engine.monitoring.security import CSP, Guard, host_name

TOKEN = "s3cret-token-0123456789"


def test_security_headers_and_no_cors(client: TestClient) -> None:
    for path in ("/", "/api/machines", "/static/app.js"):
        r = client.get(path)
        assert r.status_code == 200
        assert r.headers["content-security-policy"] == CSP
        assert "script-src 'self'" in CSP and "unsafe-eval" not in CSP
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "access-control-allow-origin" not in r.headers
    assert client.get("/static/app.js").headers["content-type"].startswith("text/javascript")


def test_foreign_host_is_refused(client: TestClient) -> None:
    r = client.get("/api/machines", headers={"host": "evil.example:3001"})
    assert r.status_code == 403
    assert client.get("/", headers={"host": "localhost:3001"}).status_code == 200
    assert client.get("/", headers={"host": "[::1]:3001"}).status_code == 200


def test_cross_origin_writes_are_refused(client: TestClient) -> None:
    evil = {"origin": "http://evil.example"}
    assert client.post("/api/jobs", json={"job_type": "t"}, headers=evil).status_code == 403
    same = {"origin": "http://127.0.0.1:3001"}
    assert client.post("/api/jobs", json={"job_type": "t"}, headers=same).status_code == 201


def test_websocket_from_foreign_origin_gets_403(live: Any) -> None:
    with pytest.raises(InvalidStatus) as info:
        connect(live.ws_url, origin="http://evil.example")  # type: ignore[arg-type]
    assert info.value.response.status_code == 403
    with pytest.raises(InvalidStatus) as info:
        connect(live.ws_url, origin=f"http://{live.host}.evil.example")  # type: ignore[arg-type]
    assert info.value.response.status_code == 403
    with connect(live.ws_url, origin=live.url) as ws:  # type: ignore[arg-type]
        assert '"snapshot"' in str(ws.recv(timeout=5))


def test_token_required_on_rest_and_websocket(live_factory: Any) -> None:
    live = live_factory(token=TOKEN)
    assert httpx.get(f"{live.url}/api/machines").status_code == 401
    wrong = {"authorization": "Bearer nope"}
    assert httpx.get(f"{live.url}/api/machines", headers=wrong).status_code == 401
    ok = {"authorization": f"Bearer {TOKEN}"}
    assert httpx.get(f"{live.url}/api/machines", headers=ok).status_code == 200
    assert httpx.get(f"{live.url}/api/machines?token={TOKEN}").status_code == 200
    page = httpx.get(f"{live.url}/?token={TOKEN}")
    assert page.status_code == 200 and "HttpOnly" in page.headers["set-cookie"]
    cookie = {"cookie": f"statemachine_ui_token={TOKEN}"}
    assert httpx.get(f"{live.url}/static/app.js", headers=cookie).status_code == 200
    assert httpx.get(f"{live.url}/static/app.js").status_code == 401
    for url in (live.ws_url, live.ws_url + "?token=wrong"):
        with pytest.raises(InvalidStatus) as info:
            connect(url)
        assert info.value.response.status_code == 401
    with connect(f"{live.ws_url}?token={TOKEN}") as ws:
        assert '"snapshot"' in str(ws.recv(timeout=5))


def test_wildcard_bind_accepts_any_host_only_with_a_token() -> None:
    assert Guard(bind_host="0.0.0.0", token=TOKEN).host_allowed("box.lan:3001")
    assert not Guard(bind_host="0.0.0.0").host_allowed("box.lan:3001")
    assert Guard(bind_host="10.0.0.5", token=TOKEN).host_allowed("10.0.0.5:3001")
    assert not Guard(bind_host="10.0.0.5", token=TOKEN).host_allowed("evil.example")
    assert not Guard().host_allowed(None)
    assert host_name("[::1]:3001") == "::1" and host_name("Example:80") == "example"


TRAVERSALS = [
    b"/static/../../etc/passwd",
    b"/static/%2e%2e/%2e%2e/etc/passwd",
    b"/static/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    b"/static/..%5c..%5cetc%5cpasswd",
    b"/static/app.js%00.png",
    b"/static//etc/passwd",
    b"/static/%2fetc%2fpasswd",
    b"/static/vendor/../../../../etc/passwd",
    b"/api/diagram/../../x",
    b"/../../../etc/passwd",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_static_traversal_is_404(live: Any, path: bytes) -> None:
    response = live.raw(
        b"GET "
        + path
        + b" HTTP/1.1\r\nHost: "
        + live.host.encode()
        + b"\r\nConnection: close\r\n\r\n"
    )
    status = response.split(b"\r\n", 1)[0]
    assert b" 404 " in status or b" 400 " in status, status
    assert b"root:" not in response


def test_symlink_out_of_the_asset_dir_is_not_served(tmp_path: Path) -> None:
    root = tmp_path / "static"
    root.mkdir()
    (root / "ok.css").write_text("body{}")
    (tmp_path / "secret.txt").write_text("secret")
    os.symlink(tmp_path / "secret.txt", root / "leak.txt")
    assert static_file(root, "ok.css") == (root / "ok.css").resolve()
    for bad in ("leak.txt", "../secret.txt", "/etc/passwd", "a\x00b", "..\\secret.txt", ""):
        assert static_file(root, bad) is None
    assert static_file(STATIC_DIR, "index.html") is not None


REBINDING_HOSTS = [
    "127.0.0.1.attacker.example:{port}",
    "127.0.0.1:{port}@evil.example",
    "127.0.0.1:{port} evil",
    "127.evil.example:{port}",
    "127.1:{port}",
    "localhost.attacker.example:{port}",
    "[::1].evil:{port}",
    "[::ffff:127.0.0.1]:{port}",
    "127.0.0.1:{port}:80",
    "127.0.0.1:99999",
    "localhost.:{port}",
]


def _raw_status(live: Any, method: str, host: str, extra: str = "", body: bytes = b"") -> int:
    head = f"{method} /api/jobs HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{extra}"
    if body:
        head += f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
    response = live.raw(head.encode("latin-1") + b"\r\n" + body)
    return int(response.split(b" ", 2)[1])


@pytest.mark.parametrize("host", REBINDING_HOSTS)
def test_dns_rebinding_hosts_are_refused_over_real_http(live: Any, host: str) -> None:
    # A page served from a name that resolves to 127.0.0.1 sends its own name as Host and
    # Origin: neither a GET nor a "same-origin" POST that would create a job gets through.
    shown = host.format(port=live.port)
    assert _raw_status(live, "GET", shown) == 403
    origin = f"origin: http://{shown}\r\n"
    assert _raw_status(live, "POST", shown, origin, b'{"job_type": "t"}') == 403
    assert httpx.get(f"{live.url}/api/jobs").json()["jobs"] == []


@pytest.mark.parametrize(
    "host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}", "127.3.4.5"]
)
def test_loopback_literals_and_localhost_are_served(live: Any, host: str) -> None:
    shown = host.format(port=live.port)
    assert _raw_status(live, "GET", shown) == 200
    origin = f"origin: http://{shown}\r\n"
    assert _raw_status(live, "POST", shown, origin, b'{"job_type": "t"}') == 201


def test_origin_must_match_the_host_strictly() -> None:
    guard = Guard()
    assert guard.origin_allowed("http://127.0.0.1:3001", "127.0.0.1:3001")
    assert guard.origin_allowed("http://LOCALHOST:3001", "localhost:3001")
    assert not guard.origin_allowed("http://127.0.0.1:3001@evil.example", "127.0.0.1:3001")
    assert not guard.origin_allowed("http://127.0.0.1:3001/x", "127.0.0.1:3001")
    assert not guard.origin_allowed("http://127.0.0.1:3002", "127.0.0.1:3001")
    assert not guard.origin_allowed("null", "127.0.0.1:3001")
    assert not guard.origin_allowed("file://127.0.0.1:3001", "127.0.0.1:3001")


def test_explicit_hosts_and_wildcard_bind_still_need_well_formed_hosts() -> None:
    named = Guard(bind_host="0.0.0.0", token=TOKEN, extra_hosts=frozenset({"box.lan"}))
    assert named.host_allowed("box.lan:3001") and named.host_allowed("other.lan")
    assert not named.host_allowed("box.lan:3001@evil") and not named.host_allowed("a b")
    assert Guard(extra_hosts=frozenset({"box.lan"})).host_allowed("box.lan:3001")
    assert not Guard(extra_hosts=frozenset({"box.lan"})).host_allowed("box.lan.evil:3001")
