"""Which address a collector charges: X-Forwarded-For is read only through trusted proxies."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from stream.collector.client_address import MAX_HOPS, client_address
from stream.settings import CollectorSettings, SettingsError

LB = (ip_network("10.0.0.0/8"), ip_network("fd00::/8"))


def test_without_trusted_proxies_the_header_is_ignored() -> None:
    assert client_address("198.51.100.9", "203.0.113.7", ()) == "198.51.100.9"


def test_a_connection_from_an_untrusted_peer_is_the_client_whatever_it_claims() -> None:
    assert client_address("198.51.100.9", "203.0.113.7", LB) == "198.51.100.9"


def test_through_a_trusted_proxy_the_forwarded_client_is_charged() -> None:
    assert client_address("10.1.2.3", "203.0.113.7", LB) == "203.0.113.7"


def test_trusted_hops_are_skipped_from_the_right_and_forged_left_entries_ignored() -> None:
    header = "192.0.2.66, 203.0.113.7, 10.9.9.9, 10.0.0.5"  # forged, client, two balancers
    assert client_address("10.1.2.3", header, LB) == "203.0.113.7"


def test_only_trusted_hops_leaves_the_left_most_of_them() -> None:
    assert client_address("10.1.2.3", "10.0.0.7, 10.0.0.5", LB) == "10.0.0.7"


def test_a_garbage_hop_stops_the_walk_at_the_last_trusted_address() -> None:
    assert client_address("10.1.2.3", "203.0.113.7, not-an-ip", LB) == "10.1.2.3"
    assert client_address("10.1.2.3", "", LB) == "10.1.2.3"


def test_ipv6_and_mixed_versions() -> None:
    assert client_address("fd00::1", "2001:db8::5", LB) == "2001:db8::5"
    assert client_address("fd00::1", "10.0.0.1, 2001:db8::5", LB) == "2001:db8::5"


def test_an_overlong_header_is_read_only_up_to_its_last_hops() -> None:
    header = ", ".join(["10.0.0.1"] * (MAX_HOPS + 50) + ["10.0.0.2"])
    assert client_address("10.1.2.3", header, LB) == "10.0.0.1"


def test_no_remote_is_unknown() -> None:
    assert client_address(None, "203.0.113.7", LB) == "unknown"


def test_settings_read_and_check_the_networks() -> None:
    env = {"UPSELL_COLLECTOR_TRUSTED_PROXIES": " 10.0.0.0/8 ,::1 "}
    assert CollectorSettings.from_env(env).trusted_proxies == (
        ip_network("10.0.0.0/8"),
        ip_network("::1/128"),
    )
    assert CollectorSettings.from_env({}).trusted_proxies == ()
    with pytest.raises(SettingsError, match="UPSELL_COLLECTOR_TRUSTED_PROXIES"):
        CollectorSettings.from_env({"UPSELL_COLLECTOR_TRUSTED_PROXIES": "10.0.0.0/33"})
