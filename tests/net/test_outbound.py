"""SSRF guard: what outbound requests refuse, and what they read, against a real loopback server."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from integrations.models import AllowedNetwork
from net import outbound
from tests.http_receiver import Answer

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/x", "127.0.0.1 is a loopback address"),
        ("http://127.8.9.10:8080/x", "127.8.9.10 is a loopback address"),
        ("http://localhost:8000/", "127.0.0.1 is a loopback address"),
        ("http://api.localhost/", "127.0.0.1 is a loopback address"),
        ("http://10.1.2.3/", "10.1.2.3 is a private address"),
        ("http://192.168.0.10/", "192.168.0.10 is a private address"),
        ("http://172.16.5.5/", "172.16.5.5 is a private address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("http://0.0.0.0/", "0.0.0.0 is an unspecified address"),
        ("http://100.64.0.1/", "100.64.0.1 is not a publicly routable address"),
        ("http://224.0.0.1/", "224.0.0.1 is a multicast address"),
        ("http://[::1]/", "::1 is a loopback address"),
        ("http://[fe80::1]/", "fe80::1 is a link-local address"),
        ("http://[fd00::1]/", "fd00::1 is a private address"),
        ("http://[::ffff:127.0.0.1]/", "::ffff:7f00:1 is a loopback address"),
    ],
)
def test_non_public_addresses_are_refused_before_any_connection(url, reason):
    with pytest.raises(outbound.OutboundRefused, match=f"Refused: {reason}. An admin can allow it."):
        outbound.literal_refusal(url)
    with pytest.raises(outbound.OutboundRefused, match="An admin can allow it"):
        outbound.request("GET", url, timeout=2)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///etc/passwd", "Only http and https URLs are accepted."),
        ("ftp://example.com/a.jpg", "Only http and https URLs are accepted."),
        ("gopher://example.com/", "Only http and https URLs are accepted."),
        ("http://user:secret@example.com/a.jpg", "URLs with a user name or password are not accepted."),
        ("http:///a.jpg", "The URL has no host."),
        ("http://example.com:99999/", "Not a valid URL"),
        ("", "Enter a URL."),
        ("https://example.com/" + "a" * 2000, "longer than 2000 characters"),
    ],
)
def test_malformed_urls_are_refused(url, message):
    with pytest.raises(outbound.OutboundRefused, match=message.replace("?", r"\?")):
        outbound.parse_url(url)


def test_public_literals_pass_the_cheap_check():
    outbound.literal_refusal("https://93.184.215.14/a.jpg")
    outbound.literal_refusal("https://images.example.com/a.jpg")  # names are checked when resolved


def test_a_name_that_resolves_to_a_private_address_is_refused():
    host = socket.gethostname()
    try:
        address = ipaddress.ip_address(socket.getaddrinfo(host, 80, type=socket.SOCK_STREAM)[0][4][0])
    except (OSError, ValueError):
        pytest.skip("this machine's own name does not resolve")
    if address.is_global:
        pytest.skip("this machine's own name resolves to a public address")
    with pytest.raises(outbound.OutboundRefused, match=f"Refused: {host} resolves to {address}, which is"):
        outbound.request("GET", f"http://{host}/", timeout=2)


def test_allow_list_opens_a_range_and_the_request_goes_to_the_checked_address(receiver):
    receiver.answers["/a"] = [Answer(body=b"hello")]
    with pytest.raises(outbound.OutboundRefused):
        outbound.request("GET", receiver.url("/a"), timeout=5)
    assert receiver.requests == []

    AllowedNetwork.objects.create(network="127.0.0.0/8")
    response = outbound.request("GET", f"http://localhost:{receiver.port}/a?q=1", timeout=5)
    assert (response.status, response.body) == (200, b"hello")
    [request] = receiver.requests
    assert request.path == "/a?q=1"
    assert request.headers["Host"] == f"localhost:{receiver.port}"


def test_settings_allow_list_works_too(receiver, settings):
    settings.VIGIL_OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.1"]
    assert outbound.request("GET", receiver.url("/"), timeout=5).status == 200


def test_body_cap_with_and_without_content_length(receiver, allow_loopback):
    big = b"x" * 300_000
    receiver.answers["/declared"] = [Answer(body=big)]
    receiver.answers["/chunked"] = [Answer(body=big, chunked=True)]
    for path in ("/declared", "/chunked"):
        with pytest.raises(outbound.OutboundRefused, match="larger than 100,000 bytes"):
            outbound.request("GET", receiver.url(path), timeout=5, max_bytes=100_000)
    assert outbound.request("GET", receiver.url("/chunked"), timeout=5, max_bytes=300_000).body == big


def test_slow_servers_hit_the_overall_deadline(receiver, allow_loopback):
    receiver.answers["/slow"] = [Answer(delay=3)]
    receiver.answers["/drip"] = [Answer(body=b"y" * 40, drip=0.1)]  # 4 s in all, each byte in time
    for path in ("/slow", "/drip"):
        with pytest.raises(outbound.OutboundUnavailable, match="timed out"):
            outbound.request("GET", receiver.url(path), timeout=1)


def test_connection_refused_is_transient(allow_loopback):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(outbound.OutboundUnavailable, match="connection refused"):
        outbound.request("GET", f"http://127.0.0.1:{port}/", timeout=2)


def test_redirects_are_checked_hop_by_hop(receiver, allow_loopback):
    receiver.answers["/to-metadata"] = [Answer(status=302, headers={"Location": "http://169.254.169.254/latest/"})]
    receiver.answers["/to-private"] = [Answer(status=301, headers={"Location": "http://10.0.0.5/admin"})]
    receiver.answers["/to-local"] = [Answer(status=307, headers={"Location": "/final"})]
    receiver.answers["/final"] = [Answer(body=b"done")]
    receiver.answers["/loop"] = [Answer(status=302, headers={"Location": "/loop"})]
    with pytest.raises(outbound.OutboundRefused, match=r"169\.254\.169\.254 is a link-local address"):
        outbound.request("GET", receiver.url("/to-metadata"), timeout=5, max_redirects=3)
    with pytest.raises(outbound.OutboundRefused, match=r"10\.0\.0\.5 is a private address"):
        outbound.request("GET", receiver.url("/to-private"), timeout=5, max_redirects=3)
    response = outbound.request("GET", receiver.url("/to-local"), timeout=5, max_redirects=3)
    assert (response.status, response.body, response.url) == (200, b"done", receiver.url("/final"))
    with pytest.raises(outbound.OutboundRefused, match="More than 3 redirects"):
        outbound.request("GET", receiver.url("/loop"), timeout=5, max_redirects=3)
    # Without max_redirects, a redirect is an answer like any other.
    assert outbound.request("GET", receiver.url("/to-local"), timeout=5).status == 307


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("64:ff9b::a00:1", "a private address"),  # NAT64 of 10.0.0.1
        ("2002:a00:1::", "a private address"),  # 6to4 of 10.0.0.1
        ("::7f00:1", "a loopback address"),  # IPv4-compatible 127.0.0.1
        ("fec0::1", "a tunnelling or site-local IPv6 address"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "a tunnelling or site-local IPv6 address"),  # Teredo
    ],
)
def test_ipv6_forms_that_carry_an_inside_address_are_refused(address, kind):
    assert outbound.address_refusal(ipaddress.ip_address(address), networks=[]) == kind
    assert outbound.address_refusal(ipaddress.ip_address("2606:4700::1111"), networks=[]) is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://a..b.com/x.jpg", "is not a valid host name"),
        ("https://" + "a" * 64 + ".com/x.jpg", "is not a valid host name"),
        ("https://exa mple.com/x.jpg", "spaces or control characters"),
        ("https://example.com/a\x00.jpg", "spaces or control characters"),
    ],
)
def test_unusable_host_names_are_refused_not_crashed_on(url, message):
    with pytest.raises(outbound.OutboundRefused, match=message):
        outbound.request("GET", url, timeout=2)


def test_international_names_go_out_in_their_ascii_form():
    assert outbound.parse_url("https://пример.рф/x.jpg").host == "xn--e1afmkfd.xn--p1ai"
