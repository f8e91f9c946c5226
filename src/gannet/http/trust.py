"""Which peers we believe: the allow-lists of --forwarded-allow-ips, --proxy-allow-from
and --uwsgi-allow-from.

Built once, at config time, from comma-separated IPs and CIDRs (v4 and v6), ``*`` for
everyone and ``unix`` for Unix-socket peers; a bad entry raises ``ValueError`` naming it,
so a typo fails at start-up, never per request. ``is_trusted(host)`` is an exact-match
set lookup first (the usual ``127.0.0.1``), then the networks (memoised, bounded). An
IPv4-mapped IPv6 address (``::ffff:10.0.0.1``, what a dual-stack socket reports) is the
IPv4 address for every purpose here. No httptools, no event loop: the master imports it
to validate options.
"""
from __future__ import annotations

import ipaddress
import socket
from typing import Iterable

__all__ = ["DEFAULT_ALLOW", "TrustedPeers", "ip_address"]

DEFAULT_ALLOW = "127.0.0.1,unix"  # the default: loopback IPv4 and Unix sockets
_MEMO_MAX = 256
_MAPPED_PREFIX = bytes(10) + b"\xff\xff"  # ::ffff:0:0/96 (RFC 4291 §2.5.5.2)


def ip_address(text: str) -> str | None:
    """The normalised address (IPv4-mapped IPv6 as IPv4), or None if ``text`` is not one.

    inet_pton (C) first: ipaddress costs ~5 µs a parse, this ~0.3 µs, and it is strict
    (no octal or short IPv4 forms). Zone ids (``fe80::1%eth0``) fall back to ipaddress."""
    try:
        if ":" not in text:
            socket.inet_pton(socket.AF_INET, text)
            return text
        packed = socket.inet_pton(socket.AF_INET6, text)
    except (OSError, ValueError):
        if "%" not in text:
            return None
        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            return None
    if packed[:12] == _MAPPED_PREFIX:
        return socket.inet_ntop(socket.AF_INET, packed[12:])
    return socket.inet_ntop(socket.AF_INET6, packed)


class TrustedPeers:
    """The peers whose forwarding headers we believe (``--forwarded-allow-ips``)."""

    __slots__ = ("trust_all", "unix", "_exact", "_networks", "_memo")

    def __init__(self, spec: str | Iterable[str]) -> None:
        entries = spec.split(",") if isinstance(spec, str) else [
            part for item in spec for part in str(item).split(",")]
        self.trust_all = False
        self.unix = False
        self._exact: set[str] = set()
        self._networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        self._memo: dict[str, bool] = {}
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            if entry == "*":
                self.trust_all = True
            elif entry.lower() == "unix":
                self.unix = True
            elif "/" in entry:
                try:
                    network = ipaddress.ip_network(entry)
                except ValueError as exc:
                    raise ValueError(f"{entry!r} is not an IP network ({exc})") from None
                self._networks.append(network)
                if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(
                        ipaddress.IPv6Network("::ffff:0:0/96")) and network.prefixlen >= 96:
                    # ::ffff:10.0.0.0/104 means 10.0.0.0/8: we compare mapped peers as IPv4.
                    base = network.network_address.ipv4_mapped
                    self._networks.append(ipaddress.IPv4Network(f"{base}/{network.prefixlen - 96}"))
            else:
                address = ip_address(entry)
                if address is None:
                    raise ValueError(f"{entry!r} is not an IP address, a network, '*' or 'unix'")
                self._exact.add(address)
                self._exact.add(entry)

    @classmethod
    def default(cls) -> "TrustedPeers":
        """127.0.0.1 and Unix sockets, the issue's (and uvicorn's, plus unix) default."""
        return cls(DEFAULT_ALLOW)

    def is_trusted(self, host: str | None) -> bool:
        """Whether a peer (``None``: a Unix socket) may set forwarding headers."""
        if host is None:
            return self.unix
        if self.trust_all or host in self._exact:
            return True
        known = self._memo.get(host)
        if known is not None:
            return known
        address = ip_address(host)
        trusted = address is not None and (address in self._exact or any(
            ipaddress.ip_address(address) in network for network in self._networks))
        if len(self._memo) >= _MEMO_MAX:
            self._memo.clear()
        self._memo[host] = trusted
        return trusted
