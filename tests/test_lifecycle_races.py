"""Races and repairs of the task lifecycle (review 16, F1-F5 and F9), on every backend.

The checks of ``task edit`` read a snapshot before the task's own locked update, so two edits
can each close half of a cycle; the edit verifies after its write and takes its own edges back.
The single-process tests make the snapshot check see nothing (as a racer's stale snapshot
would) and check the verify step alone; the multi-process tests race real processes and check
that no cycle survives. Workers run as ``python -c`` on :func:`edit_worker`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from agentcoord import errors
from agentcoord.api import Coordinator
from agentcoord.core import checklist, deps
from agentcoord.core.models import BLOCKED, CANCELLED, COMPLETE, PENDING

from .conftest import BACKENDS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from agentcoord.core.models import Task
    from agentcoord.workspace import Workspace

    from .redis_server import RedisServer

REPO = str(Path(__file__).resolve().parent.parent)


def states(coord: Coordinator) -> dict[str, str]:
    return {t.id: t.status for t in coord.tasks.list(limit=1000)}


def kinds(coord: Coordinator) -> list[str]:
    return sorted(v.kind for v in coord.doctor.check())


def stale_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pre-checks of ``edit`` see no cycle, as a racer's snapshot from before the other
    edge was written would."""
    monkeypatch.setattr(deps, "check_acyclic", lambda *a, **k: None)
    monkeypatch.setattr(deps, "check_parent", lambda *a, **k: None)


# -- F1: dependency cycles -------------------------------------------------------------------
def test_dependency_edge_that_closes_a_cycle_is_taken_back(
    coord: Coordinator, monkeypatch: pytest.MonkeyPatch
) -> None:
    for tid in ("a", "b", "c"):
        coord.tasks.create(tid.upper(), id=tid)
    stale_checks(monkeypatch)
    coord.tasks.edit("a", add_deps=["b"])
    coord.tasks.edit("b", add_deps=["c"])
    with pytest.raises(errors.DependencyCycle) as exc:
        coord.tasks.edit("c", add_deps=["a"])
    assert exc.value.exit_code == 2
    assert "c -> a -> b -> c" in exc.value.message
    assert "other changes" not in exc.value.message
    assert coord.tasks.get("c").depends_on == []
    assert "edit refused: dependency cycle" in coord.tasks.get("c").logs[-1].message
    assert "cycle" not in kinds(coord)


def test_refused_dependency_keeps_the_rest_of_the_edit_and_says_so(
    coord: Coordinator, monkeypatch: pytest.MonkeyPatch
) -> None:
    for tid in ("a", "b", "x"):
        coord.tasks.create(tid.upper(), id=tid)
    coord.tasks.edit("b", add_deps=["x"])
    stale_checks(monkeypatch)
    coord.tasks.edit("a", add_deps=["b"])
    with pytest.raises(errors.DependencyCycle) as exc:
        coord.tasks.edit("b", add_deps=["a"], title="B2", remove_deps=["x"])
    assert "the edit's other changes were made" in exc.value.message
    b = coord.tasks.get("b")
    assert (b.title, b.depends_on) == ("B2", [])
    assert kinds(coord) == []


def test_refused_dependency_on_a_failed_task_leaves_it_unblocked(
    coord: Coordinator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The edge taken back had blocked the task: it is re-derived, and nothing stays blocked."""
    coord.agents.register("w")
    coord.tasks.create("A", id="a")
    coord.tasks.create("B", id="b", depends_on=["a"])
    coord.tasks.create("F", id="f")
    coord.tasks.create("D", id="d", depends_on=["b"])
    coord.tasks.claim("f", agent="w")
    coord.tasks.fail("f", agent="w", error="x")
    stale_checks(monkeypatch)
    with pytest.raises(errors.DependencyCycle):
        coord.tasks.edit("a", add_deps=["b", "f"])
    a = coord.tasks.get("a")
    # Only the edge that closed the cycle matters, but the edit's added edges go back together.
    assert a.depends_on == [] and a.status == PENDING
    assert states(coord)["d"] == PENDING
    assert kinds(coord) == []


def test_create_with_dependencies_needs_no_verify(coord: Coordinator) -> None:
    """Nothing can depend on a task before it exists: the edit that adds the edge into a new
    task verifies after the task's own edges were written."""
    coord.tasks.create("A", id="a")
    coord.tasks.create("B", id="b", depends_on=["a"])
    with pytest.raises(errors.DependencyCycle):
        coord.tasks.edit("a", add_deps=["b"])
    assert coord.tasks.get("a").depends_on == []


# -- F2: parent cycles -----------------------------------------------------------------------
def test_parent_that_closes_a_cycle_is_taken_back(
    coord: Coordinator, monkeypatch: pytest.MonkeyPatch
) -> None:
    for tid in ("p", "q", "r", "old"):
        coord.tasks.create(tid.upper(), id=tid)
    coord.tasks.edit("q", parent="old")
    stale_checks(monkeypatch)
    coord.tasks.edit("p", parent="q")
    with pytest.raises(errors.DependencyCycle) as exc:
        coord.tasks.edit("q", parent="p")
    assert exc.value.exit_code == 2
    assert "parent cycle: q -> p -> q" in exc.value.message
    assert coord.tasks.get("q").parent == "old"  # the parent it replaced is put back
    assert "parent_cycle" not in kinds(coord)


def test_doctor_reports_a_parent_cycle(coord: Coordinator) -> None:
    for tid in ("p", "q", "r"):
        coord.tasks.create(tid.upper(), id=tid)

    def parent(value: str):  # type: ignore[no-untyped-def]
        def fn(task: Task) -> Task:
            task.parent = value
            return task

        return fn

    coord.store.update_task("q", parent("p"))  # a hand edit, or a race before the fix
    coord.store.update_task("r", parent("q"))
    coord.store.update_task("p", parent("r"))
    found = [v for v in coord.doctor.check() if v.kind == "parent_cycle"]
    assert len(found) == 1
    assert found[0].key == "p" and not found[0].repairable
    assert "parent cycle: p -> r -> q -> p" in found[0].message
    assert "task edit p --parent" in found[0].message
    coord.doctor.fix()  # reports, does not repair
    assert "parent_cycle" in kinds(coord)


# -- F3: reopen / retry with a failed dependency ---------------------------------------------
def chain_failed(coord: Coordinator) -> None:
    """P failed; A depends on P, B on A: both blocked."""
    coord.agents.register("w")
    coord.tasks.create("P", id="p")
    coord.tasks.create("A", id="a", depends_on=["p"])
    coord.tasks.create("B", id="b", depends_on=["a"])
    coord.tasks.claim("p", agent="w")
    coord.tasks.fail("p", agent="w", error="x")
    assert states(coord) == {"p": "failed", "a": BLOCKED, "b": BLOCKED}


def test_reopen_with_a_failed_dependency_comes_back_blocked(coord: Coordinator) -> None:
    chain_failed(coord)
    coord.tasks.cancel("a")
    assert coord.tasks.get("a").status == CANCELLED
    a = coord.tasks.reopen("a")
    assert a.status == BLOCKED and a.blocked_reason == "dependency p is failed"
    assert states(coord) == {"p": "failed", "a": BLOCKED, "b": BLOCKED}
    assert kinds(coord) == []
    coord.tasks.retry("p")  # the cause retried: the whole chain waits again
    assert states(coord) == {"p": PENDING, "a": PENDING, "b": PENDING}
    assert kinds(coord) == []


def test_retry_of_a_failed_task_whose_dependency_failed_since(coord: Coordinator) -> None:
    coord.agents.register("w")
    coord.tasks.create("P", id="p")
    coord.tasks.create("A", id="a", depends_on=["p"])
    coord.tasks.create("B", id="b", depends_on=["a"])
    coord.tasks.claim("p", agent="w")
    coord.tasks.complete("p", agent="w")
    coord.tasks.claim("a", agent="w")
    coord.tasks.fail("a", agent="w", error="a broke")
    coord.tasks.reopen("p")
    coord.tasks.claim("p", agent="w")
    coord.tasks.fail("p", agent="w", error="p broke")
    a = coord.tasks.retry("a")
    assert a.status == BLOCKED and a.blocked_reason == "dependency p is failed"
    assert states(coord)["b"] == BLOCKED
    assert kinds(coord) == []


# -- F4: an edit that unblocks a task unblocks its dependents --------------------------------
def test_remove_dep_unblocks_the_dependents_too(coord: Coordinator) -> None:
    coord.agents.register("w")
    coord.tasks.create("A", id="a")
    coord.tasks.create("B", id="b", depends_on=["a"])
    coord.tasks.create("C", id="c", depends_on=["b"])
    coord.tasks.claim("a", agent="w")
    coord.tasks.fail("a", agent="w", error="x")
    assert states(coord) == {"a": "failed", "b": BLOCKED, "c": BLOCKED}
    assert coord.tasks.edit("b", remove_deps=["a"]).status == PENDING
    assert states(coord) == {"a": "failed", "b": PENDING, "c": PENDING}
    assert kinds(coord) == []


# -- F5: a complete parent with an open child ------------------------------------------------
def test_doctor_reports_a_complete_parent_with_an_open_child(coord: Coordinator) -> None:
    coord.tasks.create("P", id="p")
    coord.tasks.create("C", id="c", parent="p")

    def complete(task: Task) -> Task:  # what the documented race leaves
        task.status = COMPLETE
        task.completed_at = task.updated_at
        return task

    coord.store.update_task("p", complete)
    found = [v for v in coord.doctor.check() if v.kind == "open_child"]
    assert len(found) == 1 and found[0].key == "p" and not found[0].repairable
    assert "c (pending)" in found[0].message and "task reopen p" in found[0].message
    coord.tasks.cancel("c")
    assert "open_child" not in kinds(coord)


# -- F9: fenced code is not acceptance criteria ----------------------------------------------
FENCED = "Example:\n```md\n- [ ] not a criterion\n```\n- [ ] real\n~~~~\n- [ ] x\n~~~\n- [ ] y"


def test_checklist_skips_fenced_code() -> None:
    assert checklist.items(FENCED) == [(False, "real")]  # the ~~~~ fence never closes
    ticked = checklist.tick(FENCED, 1)
    assert ticked == FENCED.replace("- [ ] real", "- [x] real")
    with pytest.raises(errors.InvalidInput):
        checklist.tick(FENCED, 2)
    text = "```\n- [ ] a\n```\n  ```` py\n- [ ] b\n````\n- [ ] c"
    assert [t for _, t in checklist.items(text)] == ["c"]
    assert checklist.items("``` not closed by ```x\n- [ ] a\n```") == []


def test_task_check_ignores_fenced_items(coord: Coordinator) -> None:
    coord.tasks.create("T", id="t", description=FENCED)
    task = coord.tasks.check("t", 1)
    assert "- [ ] not a criterion" in task.description and "- [x] real" in task.description
    with pytest.raises(errors.InvalidInput):
        coord.tasks.check("t", 2)


# -- multi-process races ---------------------------------------------------------------------
def edit_worker(target: str, mode: str, side: int, pairs: int, go: float) -> None:
    """Edit every pair from one side (``side`` 0: a -> b, 1: b -> a), all workers starting at
    ``go``; prints ``{pair: outcome}``."""
    from tests.workers import open_target

    coord = open_target(target)
    while time.time() < go:
        time.sleep(0.001)
    out: dict[str, str] = {}
    for i in range(pairs):
        a, b = (f"a{i}", f"b{i}") if side == 0 else (f"b{i}", f"a{i}")
        try:
            if mode == "deps":
                coord.tasks.edit(a, add_deps=[b])
            else:
                coord.tasks.edit(a, parent=b)
            out[str(i)] = "ok"
        except errors.DependencyCycle:
            out[str(i)] = "cycle"
    coord.close()
    sys.stdout.write(json.dumps(out) + "\n")


def race_target(backend: str, workspace: Workspace, request: pytest.FixtureRequest) -> str:
    if backend == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        return f"{server.url}?workspace=race-{uuid.uuid4().hex[:10]}"
    return workspace.root


@pytest.mark.slow
@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "memory"])
@pytest.mark.parametrize("mode", ["deps", "parent"])
def test_racing_edits_never_leave_a_cycle(
    backend: str, mode: str, workspace: Workspace, request: pytest.FixtureRequest
) -> None:
    target = race_target(backend, workspace, request)
    from tests.workers import open_target

    coord = open_target(target)
    pairs = 25
    for i in range(pairs):
        coord.tasks.create("A", id=f"a{i}")
        coord.tasks.create("B", id=f"b{i}")
    go = time.time() + 1.5
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from tests.test_lifecycle_races import edit_worker; "
                "edit_worker(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), "
                "float(sys.argv[5]))",
                target,
                mode,
                str(side),
                str(pairs),
                repr(go),
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for side in (0, 1)
    ]
    results = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=240)
        assert p.returncode == 0, stderr
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    for i in range(pairs):
        outcomes = [r[str(i)] for r in results]
        assert outcomes.count("ok") <= 1, (i, outcomes)  # never both: at most one edge stays
        a, b = coord.tasks.get(f"a{i}"), coord.tasks.get(f"b{i}")
        if mode == "deps":
            edges = ("b" + str(i) in a.depends_on) + ("a" + str(i) in b.depends_on)
        else:
            edges = (a.parent == f"b{i}") + (b.parent == f"a{i}")
        assert edges == outcomes.count("ok"), (i, outcomes, edges)
    found = [v for v in coord.doctor.check() if v.kind in ("cycle", "parent_cycle")]
    assert found == []
    coord.close()
