"""The client address a collector charges its per-address rate limit to.

Behind a load balancer every request arrives from the balancer's address, so one bucket would
throttle all of a region's browsers together. The balancer names the client in
``X-Forwarded-For``; that header is only as trustworthy as the hops that appended to it, and a
browser can send one of its own. So the header is read only when the connection comes from a
configured trusted proxy (``UPSELL_COLLECTOR_TRUSTED_PROXIES``), and then from the right: each
trusted hop is skipped, and the first address no trusted proxy vouches for is the client.
"""

from __future__ import annotations

import ipaddress

from stream.settings.env import Network

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_HOPS = 16  # a header longer than this is read only up to its last 16 entries


def client_address(
    remote: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]
) -> str:
    """The address to charge: ``remote`` unless it is a trusted proxy and the header names an
    untrusted hop before it. An unparsable hop ends the walk at the last trusted one."""
    peer = _address(remote)
    if peer is None:
        return remote or "unknown"
    if not trusted or not forwarded_for or not _is_trusted(peer, trusted):
        return str(peer)
    client = peer
    for hop in reversed(forwarded_for.split(",")[-MAX_HOPS:]):
        address = _address(hop.strip())
        if address is None:
            break
        client = address
        if not _is_trusted(address, trusted):
            break
    return str(client)


def _address(text: str | None) -> Address | None:
    if not text:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _is_trusted(address: Address, trusted: tuple[Network, ...]) -> bool:
    return any(address.version == net.version and address in net for net in trusted)
