"""Reservations where people and agents look (SPEC section 13; issue 18): ``coord prime`` lists
the agent's own and counts the others' exclusive ones, ``coord status`` counts them, ``coord
doctor`` finds orphans (repairable: dropped). Every backend."""

from __future__ import annotations

import json
from typing import Any

from agentcoord.ops.prime import PATTERNS_SHOWN, RESERVATIONS_SHOWN, gather, render

from .conftest import FakeClock


def test_prime_lists_own_reservations_and_counts_the_others(coord: Any, clock: FakeClock) -> None:
    for name in ("ada", "bob"):
        coord.agents.register(name)
    coord.reservations.reserve("ada", ["src/**"], ttl=600, reason="refactor")
    coord.reservations.reserve("ada", ["docs/*.md"], shared=True)
    coord.reservations.reserve("bob", ["tests/**"])
    coord.reservations.reserve("bob", ["notes/README"], shared=True)
    data = gather(coord.tasks, coord.agents, "ada", clock(), reservations=coord.reservations)
    held = data["reservations"]
    assert held["mine_total"] == 2 and held["others_exclusive"] == 1
    assert [r["patterns"] for r in held["mine"]] == [["src/**"], ["docs/*.md"]]
    assert held["mine"][0]["expires_in"] == 600 and held["mine"][1]["expires_in"] is None
    text = render(data)
    assert "Your reservations (2; 'coord files release' gives back):" in text
    assert "[exclusive, 10m left] src/**" in text
    assert "Reserved by other agents: 1 exclusive reservation(s)" in text
    bob = render(gather(coord.tasks, coord.agents, "bob", clock(), reservations=coord.reservations))
    assert "Reserved by other agents: 1 exclusive" in bob  # ada's src/** (shared docs not)
    nobody = gather(coord.tasks, coord.agents, "cy", clock())  # without the area: nothing
    assert nobody["reservations"] == {"mine": [], "mine_total": 0, "others_exclusive": 0}
    assert "reservation" not in render(nobody)


def test_prime_stays_bounded_with_many_reservations(coord: Any, clock: FakeClock) -> None:
    coord.agents.register("ada")
    for i in range(RESERVATIONS_SHOWN + 5):
        coord.reservations.reserve("ada", [f"d{i}/f{j}-{'x' * 60}" for j in range(6)])
    data = gather(coord.tasks, coord.agents, "ada", clock(), reservations=coord.reservations)
    assert len(data["reservations"]["mine"]) == RESERVATIONS_SHOWN
    assert data["reservations"]["mine_total"] == RESERVATIONS_SHOWN + 5
    text = render(data, max_chars=1200)
    assert len(text) <= 1200
    assert f"+{6 - PATTERNS_SHOWN} more" in text
    assert "more" in text.splitlines()[-1] or "Workflow" in text


def test_status_counts_live_and_exclusive_reservations(coord: Any, run_cli: Any) -> None:
    for name in ("ada", "bob"):
        coord.agents.register(name)
    empty = json.loads(run_cli("--json", "status").stdout)
    assert empty["reservations"] == {"live": 0, "exclusive": 0}
    coord.reservations.reserve("ada", ["src/**"])
    coord.reservations.reserve("bob", ["docs/**"], shared=True)
    coord.reservations.reserve("bob", ["tests/**"], ttl=5)
    coord.clock.advance(10)  # bob's TTL one ended
    data = json.loads(run_cli("--json", "status").stdout)
    assert data["reservations"] == {"live": 2, "exclusive": 1}
    assert "reservations: 2 live (1 exclusive)" in run_cli("status").stdout


def test_doctor_finds_and_drops_orphan_reservations(coord: Any, run_cli: Any) -> None:
    for name in ("ada", "bob", "cy"):
        coord.agents.register(name)
    task = coord.tasks.create("work")
    coord.tasks.claim(task.id, agent="bob")
    coord.reservations.reserve("ada", ["src/**"])  # live: stays
    coord.reservations.reserve("bob", ["api/**"], task=task.id)
    coord.reservations.reserve("cy", ["docs/**"])
    coord.reservations.reserve("ada", ["tmp/**"], ttl=5)  # ends by its TTL: not an orphan
    assert run_cli("doctor").code == 0
    # the task changes hands behind the reservations' back, cy retires: both orphans
    store = coord.store

    def drop_holder(t: Any) -> Any:
        t.status, t.agent, t.lease_expires = "pending", None, None
        return t

    store.update_task(task.id, drop_holder)

    def retire(a: Any) -> Any:
        a.status = "retired"
        return a

    store.update_agent("cy", retire)  # not agents.retire: that releases them eagerly
    coord.clock.advance(10)
    found = json.loads(run_cli("--json", "doctor", code=1).stdout)["found"]
    orphans = [v for v in found if v["kind"] == "reservation"]
    keys = {v["key"] for v in orphans}
    by_holder = {v["message"].split(" of ")[1].split(" ")[0] for v in orphans}
    assert by_holder == {"bob", "cy"}
    assert all(v["repairable"] for v in orphans)
    assert not any("tmp/**" in v["message"] for v in orphans)
    fixed = json.loads(run_cli("--json", "doctor", "--fix").stdout)
    assert any(line.startswith("dropped orphan reservation") for line in fixed["fixed"])
    table = {r.id for r, _ in coord.reservations.table()}
    assert not keys & table
    assert [r.patterns for r in coord.reservations.list()] == [["src/**"]]
    assert run_cli("doctor").code == 0


def test_doctor_reports_an_unreadable_reservation_table(coord: Any, run_cli: Any) -> None:
    from agentcoord.errors import CorruptData
    from agentcoord.ops.doctor import check_reservations

    class Broken:
        def table(self) -> Any:
            raise CorruptData("/x/reservations.md", 3, "bad field")

    found = check_reservations(coord.store, Broken())  # type: ignore[arg-type]
    assert [v.kind for v in found] == ["corrupt"]
    assert "bad field" in found[0].message
