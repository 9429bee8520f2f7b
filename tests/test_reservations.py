"""File reservations on every backend (SPEC section 13): the conformance tests."""

from __future__ import annotations

import os

import pytest

from agentcoord.api import Coordinator
from agentcoord.core.models import Reservation
from agentcoord.errors import Conflict, InvalidInput, NotFound

from .conftest import FakeClock


def _two(coord: Coordinator) -> None:
    coord.agents.register("a1")
    coord.agents.register("b2")


def test_exclusive_reserve_refuses_an_overlap_naming_the_holder(coord: Coordinator) -> None:
    _two(coord)
    held = coord.reservations.reserve("a1", ["src/**"], reason="refactoring the API", ttl=600)
    assert held.patterns == ["src/**"] and held.mode == "exclusive"
    with pytest.raises(Conflict) as info:
        coord.reservations.reserve("b2", ["src/api/x.py"])
    err = info.value
    assert err.exit_code == 4
    assert err.details["holder"] == "a1"
    assert err.details["pattern"] == "src/**"
    assert err.details["reason"] == "refactoring the API"
    assert err.details["expires"] is not None
    for part in ("a1", "src/**", "refactoring the API", "until"):
        assert part in err.message
    # *.md (any depth) against docs/a.md; shared against exclusive; the holder itself is fine
    coord.reservations.reserve("a1", ["*.md"])
    with pytest.raises(Conflict):
        coord.reservations.reserve("b2", ["docs/a.md"], shared=True)
    coord.reservations.reserve("a1", ["src/api/x.py"])
    coord.reservations.reserve("b2", ["tests/*.py", "docs/README.rst"])
    assert {r.agent for r in coord.reservations.list()} == {"a1", "b2"}
    assert [r.patterns for r in coord.reservations.list("b2")] == [
        ["tests/*.py", "docs/README.rst"]
    ]


def test_shared_reservations_coexist(coord: Coordinator) -> None:
    _two(coord)
    coord.reservations.reserve("a1", ["docs/**"], shared=True)
    coord.reservations.reserve("b2", ["docs/a.md"], shared=True)
    with pytest.raises(Conflict):
        coord.reservations.reserve("b2", ["docs/b.md"])
    assert coord.reservations.conflicts_for(["docs/a.md"], "b2") == []  # shared: no conflict


def test_check_names_holder_pattern_reason_expiry(coord: Coordinator, clock: FakeClock) -> None:
    _two(coord)
    coord.reservations.reserve("a1", ["src/*.py"], reason="hot path", ttl=60)
    found = coord.reservations.conflicts_for(["src/a.py", "src/b/c.py", "README.md"], "b2")
    assert [c.path for c in found] == ["src/a.py"]
    row = found[0].to_dict()
    assert row["holder"] == "a1" and row["pattern"] == "src/*.py" and row["reason"] == "hot path"
    assert row["expires"].endswith("Z")
    assert "a1" in found[0].describe()
    assert coord.reservations.conflicts_for(["src/a.py"], "a1") == []  # its own
    assert coord.reservations.conflicts_for(["src/**"], "b2")  # a glob is checked as a pattern


def test_ttl_expiry_ends_a_reservation(coord: Coordinator, clock: FakeClock) -> None:
    _two(coord)
    coord.reservations.reserve("a1", ["a.py"], ttl=30)
    with pytest.raises(Conflict):
        coord.reservations.reserve("b2", ["a.py"])
    clock.advance(31)
    assert coord.reservations.list() == []
    got = coord.reservations.reserve("b2", ["a.py"])
    # the ended one was dropped from the table by that change
    assert [r.id for r in coord.store.get_reservations()] == [got.id]


def test_task_tied_reservation_ends_with_the_lease(coord: Coordinator, clock: FakeClock) -> None:
    _two(coord)
    coord.tasks.create("edit api", id="t1")
    coord.tasks.claim("t1", agent="a1", lease_seconds=60)
    held = coord.reservations.reserve("a1", ["src/api/**"], task="t1")
    assert held.task == "t1" and held.epoch == 1
    with pytest.raises(Conflict):
        coord.reservations.reserve("b2", ["src/api/x.py"])
    clock.advance(61)  # the holder stopped renewing: the lease ran out
    assert coord.reservations.list() == []
    coord.agents.heartbeat("a1")  # the agent lives on; only its lease ended
    reaped = coord.tasks.reap()
    assert [t.id for t in reaped] == ["t1"]
    assert coord.store.get_reservations() == []  # dropped eagerly by the reap
    coord.reservations.reserve("b2", ["src/api/x.py"])


@pytest.mark.parametrize("how", ["complete", "fail", "release"])
def test_task_end_releases_tied_reservations(coord: Coordinator, how: str) -> None:
    _two(coord)
    coord.tasks.create("t", id="t1")
    coord.tasks.claim("t1", agent="a1")
    coord.reservations.reserve("a1", ["x/**"], task="t1")
    coord.reservations.reserve("a1", ["y.py"])  # not tied: stays
    if how == "complete":
        coord.tasks.complete("t1", agent="a1")
    elif how == "fail":
        coord.tasks.fail("t1", agent="a1", error="broke")
    else:
        coord.tasks.release("t1", agent="a1")
    assert [r.patterns for r in coord.store.get_reservations()] == [["y.py"]]


def test_reserving_for_a_task_needs_its_lease(coord: Coordinator) -> None:
    _two(coord)
    coord.tasks.create("t", id="t1")
    with pytest.raises(Conflict, match="does not hold task t1"):
        coord.reservations.reserve("a1", ["x"], task="t1")
    coord.tasks.claim("t1", agent="b2")
    with pytest.raises(Conflict):
        coord.reservations.reserve("a1", ["x"], task="t1")
    with pytest.raises(NotFound):
        coord.reservations.reserve("a1", ["x"], task="nope")


def test_retired_or_signed_off_agent_loses_its_reservations(coord: Coordinator) -> None:
    _two(coord)
    coord.agents.register("c3")
    coord.reservations.reserve("a1", ["a/**"])
    coord.reservations.reserve("c3", ["c/**"])
    coord.agents.retire("a1")
    coord.agents.sign_off("c3")
    assert coord.store.get_reservations() == []
    coord.reservations.reserve("b2", ["a/x", "c/y"])
    with pytest.raises(Conflict, match="retired"):
        coord.reservations.reserve("a1", ["z"])


def test_offline_or_gone_agent_reservations_end_on_read(
    coord: Coordinator, clock: FakeClock
) -> None:
    _two(coord)
    coord.reservations.reserve("a1", ["a/**"])
    coord.agents.sign_off("a1", release=False)  # offline, nothing released eagerly
    assert coord.reservations.list() == []
    coord.reservations.reserve("b2", ["b/**"])
    clock.advance(86400)  # b2 silent for monitor.gone: Gone
    coord.agents.register("c3")
    assert coord.reservations.list() == []
    coord.reservations.reserve("c3", ["b/x"])


def test_release(coord: Coordinator) -> None:
    _two(coord)
    coord.reservations.reserve("a1", ["a/**", "b/**"])
    coord.reservations.reserve("a1", ["c"])
    gone = coord.reservations.release("a1", ["./a/"])
    assert [r.patterns for r in gone] == [["a/**"]]
    assert [r.patterns for r in coord.reservations.list("a1")] == [["b/**"], ["c"]]
    assert coord.reservations.release("a1", ["zzz"]) == []
    assert coord.reservations.release("b2", all=True) == []
    assert len(coord.reservations.release("a1", all=True)) == 2
    assert coord.store.get_reservations() == []
    with pytest.raises(InvalidInput):
        coord.reservations.release("a1")
    with pytest.raises(InvalidInput):
        coord.reservations.release("a1", ["x"], all=True)


@pytest.mark.parametrize(
    ("patterns", "kwargs"),
    [
        ([], {}),
        (["../x"], {}),
        (["/etc/passwd"], {}),
        ([""], {}),
        (["a\x00"], {}),
        (["a"], {"ttl": 0}),
        (["a"], {"ttl": -5}),
        (["a"], {"reason": "two\nlines"}),
    ],
)
def test_bad_input_is_exit_2(
    coord: Coordinator, patterns: list[str], kwargs: dict[str, object]
) -> None:
    _two(coord)
    with pytest.raises(InvalidInput) as info:
        coord.reservations.reserve("a1", patterns, **kwargs)  # type: ignore[arg-type]
    assert info.value.exit_code == 2
    assert coord.store.get_reservations() == []


def test_unknown_agent_is_exit_3(coord: Coordinator) -> None:
    with pytest.raises(NotFound):
        coord.reservations.reserve("ghost", ["x"])


def test_store_round_trip_and_listing(coord: Coordinator) -> None:
    _two(coord)
    assert "reservations" not in coord.store.record_names()
    r = coord.reservations.reserve("a1", ["a b/*.md", "`odd`"], reason="## Reservation: forged")
    assert "reservations" in coord.store.record_names()
    (stored,) = coord.store.get_reservations()
    assert stored == r
    assert stored.reason == "## Reservation: forged"
    coord.store.update_reservations(lambda table: [])
    assert "reservations" not in coord.store.record_names()
    coord.store.update_reservations(
        lambda table: [Reservation("x1", "a1", ["q"], created=1.5, expires=2.25)]
    )
    assert coord.store.clear() >= 1
    assert coord.store.get_reservations() == []


def test_store_refuses_bad_tables(coord: Coordinator) -> None:
    for bad in (
        [Reservation("x1", "a1", [])],
        [Reservation("x1", "a1", ["../x"])],
        [Reservation("x1", "a1", ["a"], mode="weird")],
        [Reservation("x1", "a1", ["a"]), Reservation("x1", "a1", ["b"])],
        [Reservation("x 1", "a1", ["a"])],
    ):
        with pytest.raises(InvalidInput):
            coord.store.update_reservations(lambda table, bad=bad: bad)
    assert coord.store.get_reservations() == []


def test_migrate_copies_the_table(coord: Coordinator, tmp_path: object) -> None:
    from agentcoord.ops.migrate import migrate
    from agentcoord.store.memory import MemoryStore

    _two(coord)
    coord.reservations.reserve("a1", ["src/**"], reason="r", ttl=100)
    target = MemoryStore()
    migrate(coord.store, target)
    assert target.get_reservations() == coord.store.get_reservations()


def test_an_unreadable_table_is_reported_not_replaced(coord: Coordinator, backend: str) -> None:
    from agentcoord.errors import CorruptData

    if backend == "memory":
        pytest.skip("the memory store keeps objects, not text")
    _two(coord)
    if backend == "markdown":
        path = os.path.join(coord.store.location, "reservations.md")
        with open(path, "w") as fh:
            fh.write("# File Reservations\n\n## Reservation: r1\n\n**Agent**: a1\n")
    else:
        client = coord.store.c.client  # type: ignore[attr-defined]
        client.set(coord.store.c.key("reservations"), "{not json")  # type: ignore[attr-defined]
    with pytest.raises(CorruptData) as info:
        coord.reservations.reserve("b2", ["x"])
    assert info.value.exit_code == 6
    found = [v for v in coord.store.check_storage() if v.kind == "corrupt"]
    assert found and "reservation" in (found[0].file or found[0].key)
    assert "reservations" in coord.store.record_names()
