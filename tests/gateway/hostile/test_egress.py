"""The egress policy on real sockets: what a pipeline's ``http_request`` or a ``url`` model may
reach. Every refused probe asserts the message names the setting and that the listener it
aimed at saw no connection at all (so not a byte); the allowed paths still work.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import ipaddress
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpcore
import httpx
import pytest

from budai_gateway import egress
from budai_gateway.config import Egress, Settings
from budai_gateway.testing import LocalGateway

from .conftest import run_pipeline, wait_done


class Listener:
    """A TCP listener that records every connection and every byte; it answers a request with
    ``200 hello`` or, given ``redirect_to``, a 302 there."""

    def __init__(self, host: str = "127.0.0.1", redirect_to: str | None = None) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.host = host
        self.port = int(self.sock.getsockname()[1])
        netloc = f"[{host}]" if family == socket.AF_INET6 else host
        self.url = f"http://{netloc}:{self.port}"
        self.redirect_to = redirect_to
        self.connections = 0
        self.received = bytearray()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.settimeout(2)
                data = b""
                with contextlib.suppress(OSError):
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                self.received += data
                if self.redirect_to:
                    head = f"HTTP/1.1 302 Found\r\nLocation: {self.redirect_to}\r\n"
                    body = b""
                else:
                    head, body = "HTTP/1.1 200 OK\r\n", b"hello"
                with contextlib.suppress(OSError):
                    conn.sendall(
                        head.encode()
                        + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                        + body
                    )

    def untouched(self) -> bool:
        return self.connections == 0 and not self.received

    def reset(self) -> None:
        self.connections = 0
        self.received.clear()

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        self._thread.join(5)


def _outbound_address() -> str | None:
    """A non-loopback address of this machine (a UDP connect sends nothing), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
            addr = str(s.getsockname()[0])
        except OSError:
            return None
    kind = egress.address_class(ipaddress.ip_address(addr))
    return addr if kind in (None, "private") else None


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def target() -> Iterator[Listener]:
    """A loopback service the policy must keep tenants away from."""
    t = Listener()
    yield t
    t.close()


@pytest.fixture(scope="module")
def allowed(target: Listener) -> Iterator[Listener]:
    """The one loopback port ``egress.allow_hosts`` lets through."""
    a = Listener()
    yield a
    a.close()


@pytest.fixture(scope="module")
def bouncer(target: Listener) -> Iterator[Listener]:
    """An allowed loopback port that redirects to the refused one."""
    b = Listener(redirect_to=target.url + "/file.bin")
    yield b
    b.close()


@pytest.fixture(scope="module")
def egw(allowed: Listener, bouncer: Listener) -> Iterator[LocalGateway]:
    """A gateway with the default egress rules, but for two loopback ports in allow_hosts."""
    config = {
        "egress": {"allow_hosts": [f"127.0.0.1:{allowed.port}", f"127.0.0.1:{bouncer.port}"]},
        # Redirects to 127.0.0.1 pass the download's own host check: egress is the one judged.
        "limits": {"max_step_restarts": 0, "download_allowed_hosts": ["127.0.0.1"]},
    }
    with LocalGateway(speed=20, config=config) as gw:
        yield gw


@pytest.fixture
def admin(egw: LocalGateway, target: Listener) -> Iterator[httpx.Client]:
    target.reset()
    with egw.client() as c:
        yield c


def _fetch(c: httpx.Client, url: str) -> dict[str, Any]:
    """The step of a one-step ``http_request`` pipeline, once the run is over."""
    ex = run_pipeline(c, [{"id": "get", "action": "http_request", "params": {"url": url}}])
    step: dict[str, Any] = ex["steps"]["get"]
    return step


def _refused(step: dict[str, Any], setting: str, kind: str) -> None:
    assert step["status"] == "failed", step
    assert f"egress.{setting}" in step["error"] and f"a {kind} address" in step["error"], step
    assert "egress refused" in step["error"]


@pytest.mark.parametrize(
    "spell",
    [
        "127.0.0.1",
        "localhost",
        "LOCALHOST",
        "127.1.2.3",
        "2130706433",  # 127.0.0.1 in decimal
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
    ],
)
def test_loopback_is_refused_in_every_spelling(
    admin: httpx.Client, target: Listener, spell: str
) -> None:
    step = _fetch(admin, f"http://{spell}:{target.port}/secret")
    _refused(step, "allow_loopback", "loopback")
    assert target.untouched()


@pytest.mark.parametrize(
    "spell", ["localhost.", "0177.0.0.1", "0x7f.0.0.1", "0x7f000001", "017700000001"]
)
def test_octal_and_hex_spellings_never_reach_loopback(
    admin: httpx.Client, target: Listener, spell: str
) -> None:
    # httpx refuses some of these as URLs, the resolver maps others to 127.0.0.1 (refused) or
    # to nothing: either way the step fails and nothing arrives.
    step = _fetch(admin, f"http://{spell}:{target.port}/secret")
    assert step["status"] == "failed", step
    assert target.untouched()


def test_unspecified_address_is_refused(admin: httpx.Client, target: Listener) -> None:
    step = _fetch(admin, f"http://0.0.0.0:{target.port}/")
    _refused(step, "allow_loopback", "unspecified")
    assert target.untouched()


def test_ipv6_loopback_is_refused(admin: httpx.Client) -> None:
    if not _ipv6_loopback():
        # Nothing can listen on ::1 here, so nothing could be reached either: the refusal
        # itself (made before any connect) is still checked.
        _refused(_fetch(admin, "http://[::1]:9/"), "allow_loopback", "loopback")
        return
    six = Listener("::1")
    try:
        step = _fetch(admin, f"{six.url}/")
        _refused(step, "allow_loopback", "loopback")
        assert six.untouched()
    finally:
        six.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/",
        "http://[::ffff:169.254.169.254]/",
    ],
)
def test_link_local_metadata_is_refused_at_once(admin: httpx.Client, url: str) -> None:
    t0 = time.monotonic()
    step = _fetch(admin, url)
    _refused(step, "allow_link_local", "link-local")
    assert time.monotonic() - t0 < 10  # refused before connecting, not after a timeout


def test_the_gateway_itself_is_refused(admin: httpx.Client, egw: LocalGateway) -> None:
    step = _fetch(admin, egw.url + "/health")
    assert step["status"] == "failed", step
    assert "egress.allow_gateway" in step["error"] and "own listening address" in step["error"]


def test_the_allowed_host_still_works(admin: httpx.Client, allowed: Listener) -> None:
    allowed.reset()
    step = _fetch(admin, allowed.url + "/ok")
    assert step["status"] == "completed", step
    assert step["output"]["status_code"] == 200 and step["output"]["body"] == "hello"
    assert b"GET /ok HTTP/1.1" in allowed.received


def _url_model(c: httpx.Client, uri: str) -> httpx.Response:
    return c.post("/models", json={"name": f"m-{time.monotonic_ns()}", "source": "url", "uri": uri})


def test_url_model_with_a_refused_literal_is_a_422(admin: httpx.Client, target: Listener) -> None:
    for uri in (
        f"{target.url}/w.bin",
        "http://169.254.169.254/w.bin",
        f"http://[::1]:{target.port}/",
    ):
        r = _url_model(admin, uri)
        assert r.status_code == 422, r.text
        err = r.json()["error"]
        assert err["code"] == "egress_refused" and err["param"] == "uri", err
        assert "egress.allow_" in err["message"]
    assert admin.get("/models", params={"source": "url"}).json()["data"] == []
    assert target.untouched()


def test_url_model_with_a_name_for_loopback_fails(admin: httpx.Client, target: Listener) -> None:
    r = _url_model(admin, f"http://localhost:{target.port}/w.bin")
    assert r.status_code == 201, r.text
    done = wait_done(admin, f"/models/{r.json()['id']}", {"available", "error"})
    assert done["status"] == "error", done
    assert "egress.allow_loopback" in done["error"] and "loopback address" in done["error"]
    assert target.untouched()


def test_redirect_from_an_allowed_port_to_a_refused_one(
    admin: httpx.Client, bouncer: Listener, target: Listener
) -> None:
    bouncer.reset()
    r = _url_model(admin, bouncer.url + "/w.bin")
    assert r.status_code == 201, r.text
    done = wait_done(admin, f"/models/{r.json()['id']}", {"available", "error"})
    assert done["status"] == "error", done
    assert "egress.allow_loopback" in done["error"], done
    assert bouncer.connections == 1  # the allowed hop happened
    assert target.untouched()


def test_redirect_from_a_lan_address_to_loopback(admin: httpx.Client, target: Listener) -> None:
    lan = _outbound_address()
    # A machine without one fails loudly rather than skipping: the redirect from an address the
    # policy allows by default is the case this test exists for.
    assert lan is not None, "this test needs a non-loopback local address to listen on"
    hop = Listener(lan, redirect_to=target.url + "/file.bin")
    try:
        ok = _fetch(admin, hop.url + "/direct")  # private addresses are allowed by default
        assert ok["status"] == "completed" and ok["output"]["status_code"] == 302, ok
        r = _url_model(admin, hop.url + "/w.bin")
        assert r.status_code == 201, r.text
        done = wait_done(admin, f"/models/{r.json()['id']}", {"available", "error"})
        assert done["status"] == "error" and "egress.allow_loopback" in done["error"], done
        assert hop.connections == 2
        assert target.untouched()
    finally:
        hop.close()


def test_url_model_from_the_allowed_host_downloads(admin: httpx.Client, allowed: Listener) -> None:
    r = _url_model(admin, allowed.url + "/w.bin")
    assert r.status_code == 201, r.text
    done = wait_done(admin, f"/models/{r.json()['id']}", {"available", "error"})
    assert done["status"] == "available" and done["size_bytes"] == 5, done


# -- the rules and the backend, in process -------------------------------------------------


def _policy(**kw: Any) -> egress.Policy:
    return egress.Policy.of(Egress(**kw), "http://127.0.0.1:8000")


def test_deny_wins_over_allow_and_allow_over_classes() -> None:
    lo = ipaddress.ip_address("127.0.0.1")
    pol = _policy(allow_hosts=["127.0.0.0/8"], deny_hosts=["127.0.0.1:9"])
    assert pol.refusal("127.0.0.1", lo, 8080) is None
    why = pol.refusal("127.0.0.1", lo, 9)
    assert why is not None and "egress.deny_hosts" in why
    lan = ipaddress.ip_address("10.1.2.3")
    assert _policy().refusal("h", lan, 80) is None
    why = _policy(allow_private=False).refusal("h", lan, 80)
    assert why is not None and "egress.allow_private" in why
    why = _policy().refusal("h", ipaddress.ip_address("224.0.0.1"), 80)
    assert why is not None and "egress.allow_hosts" in why
    assert _policy().refusal("h", ipaddress.ip_address("93.184.216.34"), 80) is None
    assert _policy(allow_hosts=["Intra.Example"]).refusal("intra.example.", lo, 80) is None


def test_the_gateway_port_is_refused_even_with_loopback_allowed() -> None:
    pol = _policy(allow_loopback=True)
    why = pol.refusal("localhost", ipaddress.ip_address("::1"), 8000)
    assert why is not None and "egress.allow_gateway" in why
    assert pol.refusal("localhost", ipaddress.ip_address("::1"), 8001) is None
    assert (
        _policy(allow_loopback=True, allow_gateway=True).refusal(
            "localhost", ipaddress.ip_address("::1"), 8000
        )
        is None
    )


@pytest.mark.parametrize("entry", ["", "host:port", "a:99999", "10.0.0.0/33"])
def test_bad_host_entries_fail_at_start(entry: str) -> None:
    with pytest.raises(ValueError):
        Settings.model_validate({"egress": {"allow_hosts": [entry]}})


class _Stream(httpcore.AsyncNetworkStream):
    def __init__(self, peer: tuple[str, int]) -> None:
        self.peer = peer
        self.closed = False
        self.written = b""

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.written += buffer

    async def aclose(self) -> None:
        self.closed = True

    def get_extra_info(self, info: str) -> Any:
        return self.peer if info == "server_addr" else None


class _Inner(httpcore.AsyncNetworkBackend):
    """Reports a chosen peer, as a rebinding resolver or a NAT in the way might."""

    def __init__(self, peer: tuple[str, int]) -> None:
        self.peer = peer
        self.hosts: list[str] = []
        self.streams: list[_Stream] = []

    async def connect_tcp(self, host: str, port: int, *args: Any, **kw: Any) -> _Stream:
        self.hosts.append(host)
        self.streams.append(_Stream(self.peer))
        return self.streams[-1]


def test_the_backend_connects_to_the_checked_address_and_checks_the_peer() -> None:
    async def go() -> None:
        inner = _Inner(("93.184.216.34", 80))
        backend = egress.GuardedBackend(_policy(), inner)
        await backend.connect_tcp("93.184.216.34", 80)
        assert inner.hosts == ["93.184.216.34"]  # an address, never a name resolved again
        inner.peer = ("127.0.0.1", 80)
        with pytest.raises(egress.EgressRefused, match=r"egress\.allow_loopback"):
            await backend.connect_tcp("93.184.216.34", 80)
        assert inner.streams[-1].written == b"" and inner.streams[-1].closed
        with pytest.raises(egress.EgressRefused, match=r"egress\.allow_loopback"):
            await backend.connect_tcp("localhost", 80)  # resolved, judged, never connected
        assert inner.hosts == ["93.184.216.34", "93.184.216.34"]

    asyncio.run(go())


def test_https_to_a_name_verifies_the_name_though_it_connects_to_an_address(
    tmp_path: Path,
) -> None:
    # The backend connects to the address it judged; TLS must still check the URL's name.
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    srv.socket = server_ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = srv.server_address[1]
    trust = ssl.create_default_context(cafile=str(cert))

    async def go() -> None:
        transport = egress.GuardedTransport(_policy(allow_loopback=True), trust)
        async with httpx.AsyncClient(transport=transport) as c:
            r = await c.get(f"https://localhost:{port}/")
            assert r.status_code == 200 and r.text == "hello"
            with pytest.raises(httpx.ConnectError, match=r"certificate|hostname|match"):
                await c.get(f"https://127.0.0.1:{port}/")  # the cert names localhost only

    try:
        asyncio.run(go())
    finally:
        srv.shutdown()
        srv.server_close()


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, *args: Any) -> None:
        pass
