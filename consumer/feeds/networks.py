"""Where a request comes from: allowed networks, trusted proxies and X-Forwarded-For.

A feed may limit its clients to ``allowed_networks``; the feeds file's
``[proxies] trusted`` lists the reverse proxies whose ``X-Forwarded-For`` is believed.
``client_address`` decides, from plain values, which address a request is from.
"""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

__all__ = ["IPAddress", "IPNetwork", "client_address", "in_any"]

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network


def _address(text: str) -> IPAddress | None:
    """An address from a peer or X-Forwarded-For entry, or None when it is not one.

    Accepts ``1.2.3.4``, ``::1``, ``[::1]``, and with a port ``1.2.3.4:80`` or
    ``[::1]:80`` (some proxies add one). IPv4-mapped IPv6 addresses (dual-stack
    sockets) become IPv4, so that IPv4 networks match them.
    """
    text = text.strip()
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not (rest[:1] == ":" and rest[1:].isdigit())):
            return None
        text = host
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
        if not port.isdigit():
            return None
        text = host
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def in_any(address: IPAddress, networks: tuple[IPNetwork, ...]) -> bool:
    """Whether ``address`` is in one of ``networks``."""
    # ``in`` between different IP versions is simply False, never an error.
    return any(address in network for network in networks)


def client_address(
    peer: str, forwarded_for: str | None, trusted_proxies: tuple[IPNetwork, ...]
) -> IPAddress | None:
    """The client's address: the TCP peer, or what trusted proxies say it is.

    When the peer is a trusted proxy, ``X-Forwarded-For`` (all its headers joined with
    ',') is read from the right: each entry was appended by the hop to its right, so
    entries are believed only while that hop is trusted. The first entry that is not a
    trusted proxy is the client. When every entry is a trusted proxy, the left-most is
    the client; with no header, the peer itself is.

    A malformed entry met on the way makes the client unknown (None): the trusted hop
    that wrote it cannot be believed, and the entries left of it are the client's own
    claims. None is in no network, so a feed with ``allowed_networks`` then refuses.
    The same goes for a peer that is not an address (a Unix socket, a test client).
    """
    address = _address(peer)
    if address is None or not in_any(address, trusted_proxies):
        # Headers from untrusted peers are the client's own claims: ignored.
        return address
    if forwarded_for is None or not forwarded_for.strip():
        return address
    for entry in reversed(forwarded_for.split(",")):
        address = _address(entry)
        if address is None:
            return None
        if not in_any(address, trusted_proxies):
            return address
    return address
