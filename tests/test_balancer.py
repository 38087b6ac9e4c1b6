"""Round robin per Service port."""

from __future__ import annotations

import pytest

from ingressproxy.ir.model import Backend, Endpoint
from ingressproxy.upstream.balancer import Balancer

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


# --------------------------------------------------------------------------- passive health


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _failing(balancer: Balancer, endpoint: Endpoint, times: int) -> None:
    for _ in range(times):
        balancer.connect_failed(endpoint)


def test_three_consecutive_connect_failures_eject_for_ten_seconds() -> None:
    clock = Clock()
    balancer = Balancer(clock=clock)
    backend = Backend("shop", "web", "http", EPS)
    _failing(balancer, EPS[0], 2)
    assert not balancer.is_ejected(EPS[0])
    balancer.connect_failed(EPS[0])
    assert balancer.is_ejected(EPS[0])
    assert EPS[0] not in {balancer.pick(backend) for _ in range(9)}
    clock.now += 9.999
    assert EPS[0] not in {balancer.pick(backend) for _ in range(9)}
    clock.now += 0.002
    assert EPS[0] in {balancer.pick(backend) for _ in range(3)}
    assert not balancer.is_ejected(EPS[0])


def test_a_success_resets_the_count() -> None:
    balancer = Balancer(clock=Clock())
    _failing(balancer, EPS[0], 2)
    balancer.connect_succeeded(EPS[0])
    _failing(balancer, EPS[0], 2)
    assert not balancer.is_ejected(EPS[0])


def test_after_an_ejection_one_failure_ejects_again() -> None:
    clock = Clock()
    balancer = Balancer(clock=clock)
    backend = Backend("shop", "web", "http", EPS[:2])
    _failing(balancer, EPS[0], 3)
    clock.now += 10.0
    assert EPS[0] in {balancer.pick(backend) for _ in range(2)}  # back, on probation
    balancer.connect_failed(EPS[0])
    assert balancer.is_ejected(EPS[0])


def test_when_all_are_ejected_all_are_tried_in_turn() -> None:
    balancer = Balancer(clock=Clock())
    backend = Backend("shop", "web", "http", EPS)
    for endpoint in EPS:
        _failing(balancer, endpoint, 3)
    assert [balancer.pick(backend) for _ in range(6)] == [*EPS, *EPS]  # panic mode


def test_a_success_while_ejected_brings_it_back() -> None:
    balancer = Balancer(clock=Clock())
    _failing(balancer, EPS[1], 3)
    balancer.connect_succeeded(EPS[1])
    assert not balancer.is_ejected(EPS[1])


def test_pick_other_skips_tried_and_prefers_healthy() -> None:
    balancer = Balancer(clock=Clock())
    backend = Backend("shop", "web", "http", EPS)
    _failing(balancer, EPS[1], 3)
    assert balancer.pick_other(backend, [EPS[0]]) == EPS[2]
    assert balancer.pick_other(backend, [EPS[0], EPS[2]]) == EPS[1]  # ejected beats nothing
    assert balancer.pick_other(backend, list(EPS)) is None
    assert balancer.pick_other(Backend("shop", "none", "http", ()), []) is None
