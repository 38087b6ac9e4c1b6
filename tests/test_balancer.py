"""Round robin per Service port."""

from __future__ import annotations

import pytest

from ingressproxy.balancer import Balancer
from ingressproxy.routetable import Backend, Endpoint

EPS = (Endpoint("10.0.0.1", 80), Endpoint("10.0.0.2", 80), Endpoint("10.0.0.3", 80))


def test_round_robin_visits_each_endpoint_in_turn() -> None:
    balancer = Balancer()
    backend = Backend("shop", "web", "http", EPS)
    assert [balancer.pick(backend) for _ in range(7)] == [*EPS, *EPS, EPS[0]]


def test_backends_with_the_same_key_share_one_rotation() -> None:
    # Two routes may hold equal (or rebuilt-after-reload) Backend objects for one Service port.
    balancer = Balancer()
    first = Backend("shop", "web", "http", EPS)
    second = Backend("shop", "web", "http", EPS)
    assert [balancer.pick(first), balancer.pick(second), balancer.pick(first)] == list(EPS)


def test_different_service_ports_rotate_independently() -> None:
    balancer = Balancer()
    http = Backend("shop", "web", "http", EPS)
    admin = Backend("shop", "web", "admin", EPS)
    assert balancer.pick(http) == EPS[0]
    assert balancer.pick(http) == EPS[1]
    assert balancer.pick(admin) == EPS[0]


def test_rotation_survives_a_shrinking_endpoint_list() -> None:
    balancer = Balancer()
    for _ in range(2):
        balancer.pick(Backend("shop", "web", "http", EPS))
    smaller = Backend("shop", "web", "http", EPS[:2])
    picks = [balancer.pick(smaller) for _ in range(4)]
    assert set(picks) == set(EPS[:2])
    assert picks[0] != picks[1]


def test_single_endpoint() -> None:
    backend = Backend("shop", "web", "80", EPS[:1])
    balancer = Balancer()
    assert {balancer.pick(backend) for _ in range(3)} == {EPS[0]}


def test_no_endpoints_raises() -> None:
    with pytest.raises(IndexError, match="shop/web:http"):
        Balancer().pick(Backend("shop", "web", "http", (), error="no ready endpoints"))
