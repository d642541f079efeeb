"""Outbound HTTP that cannot be turned against the inside network (server-side request forgery).

Every request resolves the host itself, refuses any address that is not publicly routable
(loopback, private, link-local, carrier-grade NAT, multicast, reserved...) unless an admin
allow-listed it, then connects to that very address: a DNS answer that changes between the check
and the connection (DNS rebinding) cannot slip through. Redirects, when followed, are checked
hop by hop. Bodies are read in small pieces against a byte cap and an overall deadline.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import urllib3
from django.conf import settings
from urllib3.util import Timeout

MAX_URL_LENGTH = 2000
REDIRECT_STATUSES = {301, 302, 303, 307, 308}
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class OutboundRefused(ValueError):
    """The request is not allowed, or its answer is unacceptable. Final; the message is safe to show."""


class OutboundUnavailable(Exception):
    """The other side could not be reached in time. Worth retrying later."""


@dataclass(frozen=True)
class Target:
    url: str
    scheme: str
    host: str
    port: int
    path: str

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


@dataclass(frozen=True)
class Response:
    url: str
    status: int
    headers: dict[str, str]
    body: bytes


def parse_url(url: str) -> Target:
    """Check the form of an http(s) URL; raises :class:`OutboundRefused` with the reason."""
    if not isinstance(url, str) or not url.strip():
        raise OutboundRefused("Enter a URL.")
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise OutboundRefused(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise OutboundRefused(f"Not a valid URL ({exc}).") from None
    if parts.scheme not in ("http", "https"):
        raise OutboundRefused("Only http and https URLs are accepted.")
    if not parts.hostname:
        raise OutboundRefused("The URL has no host.")
    if parts.username is not None or parts.password is not None:
        raise OutboundRefused("URLs with a user name or password are not accepted.")
    host = parts.hostname
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise OutboundRefused("The URL contains spaces or control characters.")
    if ":" not in host:  # a name, not an IPv6 literal: its ASCII (IDNA) form is what goes on the wire
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise OutboundRefused(f"{parts.hostname!r} is not a valid host name.") from None
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(
        url=url,
        scheme=parts.scheme,
        host=host,
        port=port or (443 if parts.scheme == "https" else 80),
        path=path,
    )


# Callables that return more allowed ranges (the integrations app registers its AllowedNetwork rows
# when it loads), so this module depends on no app.
ALLOW_LIST_SOURCES: list[Callable[[], Iterable[str]]] = []


def allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Ranges admins opened: ``VIGIL_OUTBOUND_ALLOWED_NETWORKS`` plus :data:`ALLOW_LIST_SOURCES`'."""
    configured = list(settings.VIGIL_OUTBOUND_ALLOWED_NETWORKS)
    for source in ALLOW_LIST_SOURCES:
        configured += source()
    return [ipaddress.ip_network(n, strict=False) for n in configured]


# IPv6 ranges that carry an IPv4 address a gateway may turn into a connection to it.
NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(address, ipaddress.IPv6Address) or address.is_loopback or address.is_unspecified:
        return None
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if address.sixtofour:
        return address.sixtofour
    if any(address in network for network in (*NAT64, IPV4_COMPATIBLE)):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_refusal(address: IPAddress, networks: Iterable | None = None) -> str | None:
    """What kind of address ``address`` is if it may not be reached (e.g. "a private address"),
    or None if it may. IPv6 forms that embed an IPv4 address (mapped, 6to4, NAT64, compatible)
    are judged by that address; Teredo and site-local are refused outright."""
    networks = allowed_networks() if networks is None else networks
    embedded = _embedded_ipv4(address)
    plain = embedded or address
    if any(plain in network or address in network for network in networks):
        return None
    if isinstance(address, ipaddress.IPv6Address) and (address.teredo or address.is_site_local):
        return "a tunnelling or site-local IPv6 address"
    for kind, test in (
        ("a loopback", plain.is_loopback),
        ("a link-local", plain.is_link_local),
        ("an unspecified", plain.is_unspecified),
        ("a multicast", plain.is_multicast),
        ("a private", plain.is_private),
    ):
        if test:
            return f"{kind} address"
    if not plain.is_global:
        return "not a publicly routable address"
    return None


def _refused(host: str, address: IPAddress, kind: str) -> OutboundRefused:
    try:
        literal = ipaddress.ip_address(host) == address
    except ValueError:
        literal = False
    where = f"{address} is" if literal else f"{host} resolves to {address}, which is"
    return OutboundRefused(f"Refused: {where} {kind}. An admin can allow it.")


def literal_refusal(url: str) -> None:
    """Cheap checks at submission time: the URL's form, and its host when it is an IP address or
    ``localhost``. Names are resolved and checked when the request is made."""
    target = parse_url(url)
    if _is_localhost(target.host):
        address = ipaddress.ip_address("127.0.0.1")
    else:
        try:
            address = ipaddress.ip_address(target.host)
        except ValueError:
            return
    kind = address_refusal(address)
    if kind:
        raise _refused(str(address), address, kind)


def _is_localhost(host: str) -> bool:
    """RFC 6761: ``localhost`` and every name under it mean this machine, whatever DNS says."""
    host = host.lower().rstrip(".")
    return host == "localhost" or host.endswith(".localhost")


def _resolve(target: Target) -> IPAddress:
    host = "127.0.0.1" if _is_localhost(target.host) else target.host
    try:
        infos = socket.getaddrinfo(host, target.port, type=socket.SOCK_STREAM)
    except (UnicodeError, ValueError):
        raise OutboundRefused(f"{target.host!r} is not a valid host name.") from None
    except socket.gaierror as exc:
        if exc.errno == socket.EAI_AGAIN:
            raise OutboundUnavailable(f"DNS lookup of {target.host} failed for now") from None
        raise OutboundRefused(f"{target.host} does not resolve to an address") from None
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))
    networks = allowed_networks()
    for address in addresses:  # every answer must pass: a mixed answer is refused outright
        kind = address_refusal(address, networks)
        if kind:
            raise _refused(target.host, address, kind)
    return addresses[0]


def _pool(target: Target, address: IPAddress, timeout: Timeout) -> urllib3.HTTPConnectionPool:
    common = {"port": target.port, "timeout": timeout, "retries": False, "maxsize": 1}
    if target.scheme == "https":
        # Connect to the checked address, but verify the certificate against the URL's host name.
        return urllib3.HTTPSConnectionPool(
            str(address), server_hostname=target.host, assert_hostname=target.host, cert_reqs="CERT_REQUIRED", **common
        )
    return urllib3.HTTPConnectionPool(str(address), **common)


def request(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
    max_bytes: int = 1024 * 1024,
    max_redirects: int = 0,
) -> Response:
    """Make one request (following up to ``max_redirects`` redirects, each checked anew).

    ``timeout`` bounds the whole exchange, connection to last byte. Raises
    :class:`OutboundRefused` (not allowed, or a body over ``max_bytes``) or
    :class:`OutboundUnavailable` (network trouble, timeout); an HTTP error status is returned."""
    deadline = time.monotonic() + timeout
    for _hop in range(max_redirects + 1):
        target = parse_url(url)
        address = _resolve(target)
        remaining = max(deadline - time.monotonic(), 0.001)
        pool = _pool(target, address, Timeout(connect=remaining, read=remaining))
        sent = {"User-Agent": "Vigil/1 (+image moderation)", **(headers or {}), "Host": target.host_header}
        try:
            response = pool.urlopen(
                method, target.path, body=body, headers=sent, redirect=False, retries=False, preload_content=False
            )
            try:
                if response.status in REDIRECT_STATUSES and max_redirects and response.headers.get("Location"):
                    url = urljoin(target.url, response.headers["Location"])
                    if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                        method, body = "GET", None
                    continue
                data = _read(response, max_bytes=max_bytes, deadline=deadline)
                return Response(url=target.url, status=response.status, headers=dict(response.headers), body=data)
            finally:
                response.release_conn()
        except urllib3.exceptions.HTTPError as exc:
            raise OutboundUnavailable(f"{target.host}: {_describe(exc)}") from None
        finally:
            pool.close()
    raise OutboundRefused(f"More than {max_redirects} redirects.")


def _read(response: urllib3.BaseHTTPResponse, *, max_bytes: int, deadline: float) -> bytes:
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise OutboundRefused(f"The response is larger than {max_bytes:,} bytes.")
    data = bytearray()
    while True:
        chunk = response.read1(64 * 1024)
        if not chunk:
            return bytes(data)
        data += chunk
        if len(data) > max_bytes:
            raise OutboundRefused(f"The response is larger than {max_bytes:,} bytes.")
        if time.monotonic() > deadline:
            raise OutboundUnavailable("timed out reading the response")


def _describe(exc: Exception) -> str:
    if isinstance(exc, urllib3.exceptions.NewConnectionError):  # before TimeoutError: it subclasses it
        return "connection refused or unreachable"
    if isinstance(exc, urllib3.exceptions.TimeoutError):
        return "timed out"
    if isinstance(exc, urllib3.exceptions.SSLError):
        return "TLS error (certificate?)"
    return type(exc).__name__
