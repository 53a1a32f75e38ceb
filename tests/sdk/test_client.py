"""Client construction and lifecycle: arguments, environment fallbacks, ``with_options``, the
shared pool, proxies, and the API key staying out of reprs, logs and exception text."""

from __future__ import annotations

import logging
import ssl
import threading
import tomllib
import traceback
from pathlib import Path

import httpx
import pytest

import budai
from budai import AsyncBudClient, BudClient
from budai import exceptions as exc

from ._server import API_KEY, FakeBud, Reply, ScriptedServer


def test_missing_key_fails_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BUD_API_KEY", raising=False)
    with pytest.raises(exc.AuthenticationError, match="BUD_API_KEY"):
        BudClient()
    with pytest.raises(exc.AuthenticationError):
        AsyncBudClient(api_key="")


def test_env_fallbacks_and_defaults(
    monkeypatch: pytest.MonkeyPatch, server: ScriptedServer, fake: FakeBud
) -> None:
    monkeypatch.delenv("BUD_BASE_URL", raising=False)
    monkeypatch.setenv("BUD_API_KEY", "from-env")
    c = BudClient()
    assert c.base_url == "https://gateway.bud.studio/v1"
    assert (c.timeout, c.max_retries, c.verify_ssl, c.proxy) == (30.0, 3, True, None)
    c.close()
    monkeypatch.setenv("BUD_BASE_URL", server.url + "/")
    monkeypatch.setenv("BUD_API_KEY", API_KEY)
    with BudClient() as c:
        assert c.base_url == server.url
        assert c.models.get("model_abc").id == "model_abc"
    assert server.requests[-1].headers["authorization"] == f"Bearer {API_KEY}"
    with BudClient(api_key="explicit", base_url="http://example.test/v1") as c:
        assert c._api_key == "explicit" and c.base_url == "http://example.test/v1"


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="base_url"):
        BudClient(api_key="k", base_url="gateway.bud.studio")
    with pytest.raises(ValueError, match="max_retries"):
        BudClient(api_key="k", max_retries=-1)
    with pytest.raises(ValueError, match="timeout"):
        BudClient(api_key="k", timeout=0)


def test_request_headers(client: BudClient, server: ScriptedServer) -> None:
    client.models.get("model_abc", extra_headers={"X-Request-ID": "req_custom", "X-Extra": "1"})
    h = server.requests[-1].headers
    assert h["user-agent"].startswith(f"budai/{budai.__version__} python/3.")
    assert h["x-bud-retry-count"] == "0" and h["x-extra"] == "1"
    assert h["x-request-id"] == "req_custom"
    with BudClient(api_key=API_KEY, base_url=server.url, default_headers={"X-Team": "ml"}) as c:
        c.clusters.list()
    assert server.requests[-1].headers["x-team"] == "ml"


def test_timeouts_are_per_attempt_with_a_5s_connect(client: BudClient) -> None:
    t = client._httpx_timeout
    assert (t.connect, t.read, t.write, t.pool) == (5.0, 5.0, 5.0, 5.0)
    c = client.with_options(timeout=1.5)
    assert (c._httpx_timeout.connect, c._httpx_timeout.read) == (1.5, 1.5)
    big = BudClient(api_key="k", timeout=30)
    assert (big._httpx_timeout.connect, big._httpx_timeout.read) == (5.0, 30.0)
    big.close()


def test_with_options_shares_the_pool(
    client: BudClient, server: ScriptedServer, no_sleep: list[float]
) -> None:
    copy = client.with_options(timeout=2, max_retries=0, default_headers={"X-Copy": "1"})
    assert isinstance(copy, BudClient) and copy is not client
    assert copy._http is client._http
    assert (copy.timeout, copy.max_retries, client.max_retries) == (2.0, 0, 3)
    assert copy.models is not client.models and copy.models._client is copy
    server.script("GET", "/models/model_abc", Reply(503))
    with pytest.raises(exc.ServerError):
        copy.models.get("model_abc")
    assert server.requests[-1].headers["x-copy"] == "1"
    copy.close()  # a copy leaves the shared pool open
    assert not client.is_closed
    assert client.models.get("model_abc").id == "model_abc"


def test_context_managers_close_the_pool(server: ScriptedServer, fake: FakeBud) -> None:
    with BudClient(api_key=API_KEY, base_url=server.url) as c:
        c.models.get("model_abc")
    assert c.is_closed


async def test_async_context_manager_and_options(server: ScriptedServer, fake: FakeBud) -> None:
    async with AsyncBudClient(api_key=API_KEY, base_url=server.url) as c:
        copy = c.with_options(max_retries=1)
        assert copy._http is c._http and copy.max_retries == 1
        await copy.close()
        assert not c.is_closed
        assert (await c.models.get("model_abc")).id == "model_abc"
    assert c.is_closed


def test_one_client_shared_by_threads(client: BudClient, server: ScriptedServer) -> None:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(10):
                assert client.models.get("model_abc").id == "model_abc"
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(server.requests_to("GET", "/models/model_abc")) == 80


def test_proxy_is_used(server: ScriptedServer, fake: FakeBud) -> None:
    # The local server doubles as an HTTP proxy: a proxied request line carries the full URL.
    proxy = f"http://127.0.0.1:{server.port}"
    with BudClient(api_key=API_KEY, base_url="http://bud.invalid/v1", proxy=proxy) as c:
        assert c.models.get("model_abc").id == "model_abc"
        assert c.proxy == proxy
    assert server.requests[-1].headers["host"] == "bud.invalid"


def test_verify_ssl_reaches_the_transport() -> None:
    def ssl_context(c: BudClient) -> ssl.SSLContext:
        pool = c._http._transport._pool  # type: ignore[attr-defined]
        ctx: ssl.SSLContext = pool._ssl_context
        return ctx

    with BudClient(api_key="k", verify_ssl=False) as c:
        assert ssl_context(c).verify_mode == ssl.CERT_NONE
    with BudClient(api_key="k") as c:
        assert ssl_context(c).verify_mode == ssl.CERT_REQUIRED


def test_api_key_never_leaks(
    server: ScriptedServer, fake: FakeBud, caplog: pytest.LogCaptureFixture,
    no_sleep: list[float],
) -> None:
    secret = API_KEY
    texts: list[str] = []
    with caplog.at_level(logging.DEBUG):
        with BudClient(api_key=secret, base_url=server.url) as c:
            texts += [repr(c), str(c), repr(c.with_options(timeout=3)), repr(c.models)]
            server.script(
                "GET", "/models/model_abc", Reply(503),
                Reply(401, body=f"<html>bad key {secret}</html>".encode()),
            )
            try:
                c.models.get("model_abc")
            except exc.BudAPIError as e:
                texts += [str(e), repr(e), "".join(traceback.format_exception(e)),
                          repr(e.body)]
                assert isinstance(e, exc.AuthenticationError) and "bad key ***" in e.message
            server.script("GET", "/models/model_abc", Reply(reset=True))
            r = c.with_options(max_retries=0)
            try:
                r.models.get("model_abc")
            except exc.BudAPIError as e:
                texts += [str(e), repr(e), "".join(traceback.format_exception(e))]
        with BudClient(api_key=secret, base_url="http://127.0.0.1:9/v1", max_retries=0) as c:
            try:
                c.models.list()
            except exc.APIConnectionError as e:
                texts += [str(e), "".join(traceback.format_exception(e))]
    texts.append(caplog.text)
    assert len(texts) >= 10
    for text in texts:
        assert secret not in text
    with pytest.raises(TypeError, match="pickled"):
        import pickle

        pickle.dumps(BudClient(api_key=secret))


def test_version_matches_pyproject() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert budai.__version__ == pyproject["project"]["version"]


def test_top_level_exports() -> None:
    assert budai.BudClient is BudClient and budai.AsyncBudClient is AsyncBudClient
    assert budai.exceptions is exc
    assert budai.BudTimeoutError is exc.TimeoutError
    assert "TimeoutError" not in budai.__all__  # `from budai import *` shadows no builtin
    with pytest.raises(AttributeError):
        budai.NoSuchThing  # noqa: B018


def test_custom_http_client_is_used_and_not_closed(server: ScriptedServer, fake: FakeBud) -> None:
    http = httpx.Client(headers={"X-Via": "custom"})
    with BudClient(api_key=API_KEY, base_url=server.url, http_client=http) as c:
        c.models.get("model_abc")
    assert server.requests[-1].headers["x-via"] == "custom"
    assert not http.is_closed
    http.close()


def test_env_proxy_is_honoured_without_proxy_argument(
    server: ScriptedServer, fake: FakeBud, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with BudClient(api_key=API_KEY, base_url="http://bud.invalid/v1") as c:
        assert c.clusters.get("cluster_prod").id == "cluster_prod"
    assert server.requests[-1].headers["host"] == "bud.invalid"


def test_positional_arguments_in_page_order(server: ScriptedServer, fake: FakeBud) -> None:
    with BudClient(API_KEY, server.url, 30, 0, True, None) as c:
        assert (c.base_url, c.timeout, c.max_retries, c.verify_ssl, c.proxy) == (
            server.url, 30.0, 0, True, None
        )
        assert c.models.get("model_abc").name == "llama-3.2-1b"


def test_bud_log_prints_requests_without_the_key(server: ScriptedServer, fake: FakeBud) -> None:
    import subprocess
    import sys

    code = (
        "from budai import BudClient\n"
        f"c = BudClient(api_key={API_KEY!r}, base_url={server.url!r})\n"
        "c.models.get('model_abc')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"BUD_LOG": "debug", "PATH": ""}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "GET /models/model_abc -> 200" in proc.stderr
    assert API_KEY not in proc.stderr
