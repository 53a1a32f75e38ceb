"""Egress policy: which addresses an outbound connection chosen by tenant input may reach.

A pipeline's ``http_request`` and a ``url`` model source name their own URL, and their authors
are strangers; without a policy they reach the gateway itself, other services on loopback and
the cloud metadata service (169.254.169.254). :class:`GuardedBackend` is an httpcore network
backend that resolves each new connection's host itself, checks every address against the
``egress:`` settings, connects to the checked address (so a DNS answer that changes between a
check and a connect, "rebinding", gains nothing) and checks the peer once more before any byte
is sent. It sits under every hop, so redirects are covered as well.

The chat upstream guard (``chat.check_destination``) shares :func:`address_class` and
:func:`is_gateway`; upstreams are the operator's own entries, so their flags live on the entry.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import ssl
import typing
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

import httpcore
import httpx

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# The setting that allows each refused address class (``None``: only egress.allow_hosts does).
SETTING_OF: dict[str, str | None] = {
    "loopback": "allow_loopback",
    "unspecified": "allow_loopback",  # 0.0.0.0 and :: reach this machine on Linux
    "link-local": "allow_link_local",
    "private": "allow_private",
    "multicast or reserved": None,
}


class EgressSettings(typing.Protocol):
    """The ``egress:`` block of the config (:class:`budai_gateway.config.Egress`)."""

    @property
    def allow_loopback(self) -> bool: ...
    @property
    def allow_link_local(self) -> bool: ...
    @property
    def allow_private(self) -> bool: ...
    @property
    def allow_gateway(self) -> bool: ...
    @property
    def allow_hosts(self) -> list[str]: ...
    @property
    def deny_hosts(self) -> list[str]: ...


class EgressRefused(Exception):
    """A connection the egress policy does not allow; the message names the setting."""


def normalize(addr: Address) -> Address:
    """``::ffff:127.0.0.1`` is 127.0.0.1: an IPv4-mapped address is judged as the IPv4 one."""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def parse_address(text: str) -> Address:
    """An address as a resolver or a socket reports it (an IPv6 zone ``%eth0`` dropped)."""
    return normalize(ipaddress.ip_address(text.split("%", 1)[0]))


def address_class(addr: Address) -> str | None:
    """The class of a non-public address (a key of :data:`SETTING_OF`), or None if global."""
    addr = normalize(addr)
    if addr.is_loopback:
        return "loopback"
    if addr.is_unspecified:
        return "unspecified"
    if addr.is_link_local:
        return "link-local"
    if addr.is_multicast or addr.is_reserved:
        return "multicast or reserved"
    if addr.is_private or not addr.is_global:
        return "private"
    return None


@functools.cache
def own_addresses() -> frozenset[Address]:
    """This machine's addresses (a gateway bound to 0.0.0.0 answers on all of them)."""
    found: set[Address] = set()
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            found.add(parse_address(str(info[4][0])))
    except (OSError, ValueError):
        pass
    return frozenset(found)


def is_gateway(addr: Address, port: int, own_port: int, mine: frozenset[Address]) -> bool:
    """Whether ``addr:port`` is this gateway's own listening address."""
    addr = normalize(addr)
    return port == own_port and (addr.is_loopback or addr.is_unspecified or addr in mine)


@dataclass(frozen=True)
class HostRule:
    """One entry of ``egress.allow_hosts`` / ``deny_hosts``: a name, an address or a network
    (CIDR), with an optional port (``name:8080``, ``[::1]:8080``)."""

    name: str | None = None
    network: Network | None = None
    port: int | None = None

    @classmethod
    def parse(cls, entry: str) -> HostRule:
        text = entry.strip().lower()
        if "/" in text:
            return cls(network=ipaddress.ip_network(text, strict=False))
        port: int | None = None
        if text.startswith("["):
            host, _, rest = text[1:].partition("]")
            if rest:
                port = int(rest.removeprefix(":"))
        elif text.count(":") == 1:
            host, _, raw = text.partition(":")
            port = int(raw)
        else:
            host = text
        if not host or (port is not None and not 0 < port < 65536):
            raise ValueError(f"not a host, host:port or network: {entry!r}")
        try:
            addr = parse_address(host)
        except ValueError:
            return cls(name=host.rstrip("."), port=port)
        return cls(network=ipaddress.ip_network(addr), port=port)

    def matches(self, host: str, addr: Address, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.name is not None:
            return host.lower().rstrip(".") == self.name
        assert self.network is not None
        return addr.version == self.network.version and addr in self.network


@dataclass(frozen=True)
class Policy:
    """The ``egress:`` settings, parsed once, plus the gateway's own listening port."""

    allow: dict[str, bool]  # setting name -> value, for the keys of SETTING_OF
    allow_gateway: bool
    allow_hosts: tuple[HostRule, ...]
    deny_hosts: tuple[HostRule, ...]
    own_port: int

    @classmethod
    def of(cls, eg: EgressSettings, public_url: str) -> Policy:
        return cls(
            allow={
                "allow_loopback": eg.allow_loopback,
                "allow_link_local": eg.allow_link_local,
                "allow_private": eg.allow_private,
            },
            allow_gateway=eg.allow_gateway,
            allow_hosts=tuple(HostRule.parse(h) for h in eg.allow_hosts),
            deny_hosts=tuple(HostRule.parse(h) for h in eg.deny_hosts),
            own_port=httpx.URL(public_url).port or 80,
        )

    def refusal(self, host: str, addr: Address, port: int) -> str | None:
        """Why ``host`` at ``addr:port`` may not be reached, or None when it may."""
        addr = normalize(addr)
        where = f"'{host}' ({addr}, port {port})" if host != str(addr) else f"{addr} port {port}"
        if any(r.matches(host, addr, port) for r in self.deny_hosts):
            return f"egress refused: {where} is listed in egress.deny_hosts"
        if any(r.matches(host, addr, port) for r in self.allow_hosts):
            return None
        if not self.allow_gateway and is_gateway(addr, port, self.own_port, own_addresses()):
            return (
                f"egress refused: {where} is this gateway's own listening address; set "
                "egress.allow_gateway: true in the gateway's config to allow it"
            )
        cls = address_class(addr)
        if cls is None:
            return None
        setting = SETTING_OF[cls]
        if setting is None:
            return (
                f"egress refused: {where} is a {cls} address; add it to egress.allow_hosts "
                "in the gateway's config to allow it"
            )
        if self.allow[setting]:
            return None
        return (
            f"egress refused: {where} is a {cls} address; set egress.{setting}: true "
            "(or list the host in egress.allow_hosts) in the gateway's config to allow it"
        )

    def literal_refusal(self, url: str) -> str | None:
        """The refusal of a URL whose host is an address literal (names are judged when the
        connection is made, since what they resolve to may change)."""
        try:
            parsed = httpx.URL(url)
            addr = parse_address(parsed.host)
        except (httpx.InvalidURL, ValueError):
            return None
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        return self.refusal(parsed.host, addr, port)


async def resolve(host: str, port: int) -> list[Address]:
    """Every address ``host`` resolves to (in the resolver's order, without repeats)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    out: list[Address] = []
    for info in infos:
        addr = parse_address(str(info[4][0]))
        if addr not in out:
            out.append(addr)
    return out


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to addresses the policy allows, checked before any byte is sent."""

    def __init__(self, policy: Policy, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.policy = policy
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addrs = await asyncio.wait_for(resolve(host, port), timeout)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from exc
        except (OSError, ValueError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        # Every address is judged, not only the first: a name that also points at a refused
        # address is refused, whichever one a connect would have picked.
        for addr in addrs:
            why = self.policy.refusal(host, addr, port)
            if why is not None:
                raise EgressRefused(why)
        failure: Exception = httpcore.ConnectError(f"{host} resolved to no address")
        for addr in addrs:
            try:
                stream = await self.inner.connect_tcp(
                    str(addr), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
                continue
            await self._check_peer(host, stream)
            return stream
        raise failure

    async def _check_peer(self, host: str, stream: httpcore.AsyncNetworkStream) -> None:
        """The address actually connected to, judged again before the first byte is sent."""
        peer = stream.get_extra_info("server_addr")
        why = (
            self.policy.refusal(host, parse_address(str(peer[0])), int(peer[1]))
            if peer
            else "egress refused: the peer address of the connection is unknown"
        )
        if why is not None:
            await stream.aclose()
            raise EgressRefused(why)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise EgressRefused("egress refused: unix sockets are never reached")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


# httpcore's errors as httpx's (most specific first), so callers keep catching httpx errors.
_ERRORS: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


def _as_httpx(exc: Exception) -> Exception:
    for core, mapped in _ERRORS:
        if isinstance(exc, core):
            return mapped(str(exc))
    return exc


class _Body(httpx.AsyncByteStream):
    def __init__(self, stream: typing.AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for part in self._stream:
                yield part
        except Exception as exc:
            mapped = _as_httpx(exc)
            if mapped is exc:
                raise
            raise mapped from exc

    async def aclose(self) -> None:
        close = getattr(self._stream, "aclose", None)
        if close is not None:
            await close()


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport over an httpcore pool whose connections go through
    :class:`GuardedBackend` (httpx 0.28 takes no network backend of its own)."""

    def __init__(self, policy: Policy, ssl_context: ssl.SSLContext | None = None) -> None:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)  # httpx's
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(policy),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        try:
            resp = await self._pool.handle_async_request(core)
        except Exception as exc:
            mapped = _as_httpx(exc)
            if mapped is exc:
                raise
            raise mapped from exc
        assert isinstance(resp.stream, typing.AsyncIterable)
        return httpx.Response(
            status_code=resp.status,
            headers=resp.headers,
            stream=_Body(resp.stream),
            extensions=resp.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


def client(policy: Policy) -> httpx.AsyncClient:
    """The client for destinations tenant input chooses. No proxy from the environment: a
    proxy would be the only address checked, and it would reach anything."""
    return httpx.AsyncClient(transport=GuardedTransport(policy), timeout=30, trust_env=False)
