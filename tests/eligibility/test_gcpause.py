"""The collector's pause around a check: off inside, back on after, its objects kept."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from portal.eligibility.policy.gcpause import paused_gc


@pytest.fixture
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_objects_made_in_the_pause_join_the_oldest_generation_untraversed(
    collector_on: None,
) -> None:
    passes: list[int] = []

    def record(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            passes.append(info["generation"])

    gc.callbacks.append(record)
    try:
        with paused_gc():
            assert not gc.isenabled()
            made = [[n] for n in range(50_000)]  # lists are tracked by the collector
        assert gc.isenabled()
        assert gc.get_count()[0] < 100  # nothing owed to the youngest generation
        oldest = {id(o) for o in gc.get_objects(generation=2)}
        assert all(id(o) in oldest for o in made[::1000])
        assert passes == []  # leaving the pause collected nothing
    finally:
        gc.callbacks.remove(record)


def test_cycles_made_in_the_pause_are_still_collected(collector_on: None) -> None:
    class Node:
        other: object = None

    with paused_gc():
        a, b = Node(), Node()
        a.other, b.other = b, a
    del a, b  # the cycle is garbage now, and in the oldest generation
    assert gc.collect() >= 2


def test_a_pause_inside_a_pause_leaves_the_collector_off() -> None:
    with paused_gc():
        with paused_gc():
            pass
        assert not gc.isenabled()


def test_objects_frozen_by_someone_else_stay_frozen(collector_on: None) -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with paused_gc():
            pass
        assert gc.get_freeze_count() == frozen
        assert gc.isenabled()
    finally:
        gc.unfreeze()
