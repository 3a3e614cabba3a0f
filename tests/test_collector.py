"""The garbage collector is paused for a command's bulk work, and runs again (over new objects
only) while waiting on the network; whatever state it was in before is restored."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from rerank_cli import collector
from tests.conftest import RunCli
from tests.server import Fault, RerankServer


@pytest.fixture(autouse=True)
def restore_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    if enabled:
        gc.enable()
    else:
        gc.disable()


def test_paused_then_restored() -> None:
    gc.enable()
    with collector.paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_restored_after_an_error() -> None:
    gc.enable()
    with pytest.raises(KeyboardInterrupt), collector.paused():
        raise KeyboardInterrupt
    assert gc.isenabled()


def test_resumed_collects_new_objects_only_and_pauses_again() -> None:
    gc.enable()
    with collector.paused():
        with collector.resumed():
            assert gc.isenabled()
            assert gc.get_freeze_count() > 0  # what existed before is out of its sight
        assert not gc.isenabled()
        assert gc.get_freeze_count() == 0
    assert gc.isenabled()


def test_resumed_outside_a_pause_changes_nothing() -> None:
    gc.enable()
    with collector.resumed():
        assert gc.isenabled()
        assert gc.get_freeze_count() == 0
    gc.disable()
    with collector.resumed():  # turned off by someone else: stays off
        assert not gc.isenabled()


def test_a_collector_someone_else_paused_is_left_alone() -> None:
    gc.disable()
    with collector.paused(), collector.resumed():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_objects_someone_else_froze_stay_frozen() -> None:
    gc.enable()
    gc.freeze()
    frozen = gc.get_freeze_count()
    with collector.paused(), collector.resumed():
        assert gc.isenabled()
    assert gc.get_freeze_count() == frozen


def test_a_cycle_made_while_waiting_on_the_network_is_collected() -> None:
    class Node:
        partner: object = None

    collected: list[bool] = []
    gc.enable()
    with collector.paused(), collector.resumed():
        a, b = Node(), Node()
        a.partner, b.partner = b, a
        weakref.finalize(a, collected.append, True)
        del a, b
        # No gc.collect() (it collects even when the collector is off): allocations alone
        # must set it off, as while requests are out.
        garbage = [[] for _ in range(50 * gc.get_threshold()[0])]
        del garbage
    assert collected == [True]


def test_a_command_runs_the_collector_while_it_waits_on_the_network(
    api_cli: RunCli, server: RerankServer
) -> None:
    """Through the real entry point: paused for the bulk work, running while a request is out
    (the server answers on another thread of this process), and as it was after."""
    gc.enable()
    seen: list[bool] = []

    def note(results: list[dict[str, Any]]) -> dict[str, Any]:
        seen.append(gc.isenabled())
        return {"results": results}

    server.add_faults(Fault.rewritten(note))
    done = api_cli("capital", "Paris is the capital.", "Bananas.", "--no-cache")
    assert done.exit_code == 0, done.stderr
    assert seen == [True]
    assert gc.isenabled()
