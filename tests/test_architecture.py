"""The package's shape (SPEC section 10): the public names, the layers a path names, empty
subpackage ``__init__`` files, errors that keep their codes through pickling."""

from __future__ import annotations

import ast
import pickle
from pathlib import Path

import pytest

import agentcoord
from agentcoord import errors

SRC = Path(agentcoord.__file__).parent

PUBLIC = [
    "AlreadyExists",
    "AlreadyRunning",
    "Agent",
    "BackendUnavailable",
    "BreakerOpen",
    "Change",
    "Conflict",
    "ContextDoc",
    "CoordError",
    "Coordinator",
    "CorruptData",
    "DependencyCycle",
    "Event",
    "InvalidInput",
    "InvalidName",
    "InvalidTransition",
    "LeaseLost",
    "LockTimeout",
    "LogLine",
    "MemoryStore",
    "NotFound",
    "NothingToClaim",
    "StaleEpoch",
    "Store",
    "Task",
    "TaskHead",
    "__version__",
]

#: Every directory of the package and the layer it is (docs/architecture.md).
LAYERS = {
    "cli": "interfaces",
    "mcp": "interfaces",
    "dashboard": "interfaces",
    "demo": "interfaces",
    "timer": "interfaces",
    "ops": "ops",
    "domain": "domain",
    "store": "store",
    "store/markdown": "store",
    "store/markdown/codec": "store",
    "store/redis": "store",
    "core": "core",
}
TOP_MODULES = {
    "__init__.py",
    "__main__.py",
    "api.py",
    "errors.py",
    "fs.py",
    "httpaccess.py",
    "shapes.py",
    "sessions.py",
    "workspace.py",
}


def test_public_names_are_pinned_and_all_resolve() -> None:
    assert sorted(agentcoord.__all__) == sorted(PUBLIC)
    for name in PUBLIC:
        assert getattr(agentcoord, name) is not None, name
    assert set(PUBLIC) <= set(dir(agentcoord))
    with pytest.raises(AttributeError):
        agentcoord.NoSuchThing  # noqa: B018


def test_every_error_is_exported_from_the_package() -> None:
    classes = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, errors.CoordError)
    }
    assert classes <= set(PUBLIC)


def test_every_directory_names_its_layer_and_nothing_else_sits_at_the_top() -> None:
    dirs = {
        str(p.relative_to(SRC))
        for p in SRC.rglob("*")
        if p.is_dir() and p.name != "__pycache__" and any(p.glob("*.py"))
    }
    assert dirs == set(LAYERS)
    assert {p.name for p in SRC.glob("*.py")} == TOP_MODULES


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_subpackage_init_files_are_empty(package: str) -> None:
    """Start-up time: importing a subpackage must import nothing else."""
    assert (SRC / package / "__init__.py").read_text() == ""


def _sources(*parts: str) -> list[Path]:
    return [p for part in parts for p in sorted((SRC / part).rglob("*.py"))]


def _imports(tree: ast.AST) -> set[str]:
    """Every module a source imports, as written (``os``, ``..api``, ``..store.base.Store``)."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            sep = "" if base.endswith(".") else "."
            out |= {base} | {base + sep + alias.name for alias in node.names}
    return out


#: What no module of the core, the domain or ops may use: files, processes' file systems, and
#: the concrete backends (they reach storage through the Store interface only).
FORBIDDEN_MODULES = {"pathlib", "shutil", "fcntl", "tempfile", "glob", "io", "subprocess"}
FORBIDDEN_NAMES = {"open", "MarkdownStore", "RedisStore", "MemoryStore"}
ALLOWED_OS = {"urandom", "path.basename"}  # randomness; naming a record's location in a message


@pytest.mark.parametrize("path", _sources("core", "domain", "ops"), ids=str)
def test_domain_ops_and_core_never_touch_files_or_name_a_backend(path: Path) -> None:
    tree = ast.parse(path.read_text())
    imported = {m.split(".")[0] for m in _imports(tree) if not m.startswith(".")}
    assert not imported & FORBIDDEN_MODULES, (path, imported & FORBIDDEN_MODULES)
    assert not any(".store.markdown" in m or ".store.redis" in m for m in _imports(tree)), path
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert not names & FORBIDDEN_NAMES, (path, names & FORBIDDEN_NAMES)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and ast.unparse(node).startswith("os."):
            assert ast.unparse(node)[3:] in ALLOWED_OS | {"path"}, (path, ast.unparse(node))


@pytest.mark.parametrize("path", _sources("domain"), ids=str)
def test_no_domain_module_imports_the_facade(path: Path) -> None:
    imported = _imports(ast.parse(path.read_text()))
    assert not {m for m in imported if m in ("..api", "agentcoord.api")}, path


# -- errors ------------------------------------------------------------------------------------
ERRORS = [
    (errors.InvalidInput("bad", field="x"), 2, "invalid_input"),
    (errors.InvalidName("bad name", field="agent"), 2, "invalid_name"),
    (errors.DependencyCycle("a -> b -> a", task="a"), 2, "dependency_cycle"),
    (errors.NotFound("no task", task="t"), 3, "not_found"),
    (errors.NothingToClaim("nothing", agent="a"), 3, "nothing_to_claim"),
    (errors.Conflict("held", holder="b"), 4, "conflict"),
    (errors.AlreadyExists("exists", task="t"), 4, "already_exists"),
    (errors.LeaseLost("lost", task="t"), 4, "lease_lost"),
    (errors.StaleEpoch("stale", epoch=3), 4, "stale_epoch"),
    (errors.BreakerOpen("open", agent="a"), 4, "breaker_open"),
    (errors.AlreadyRunning("running"), 4, "already_running"),
    (errors.InvalidTransition("no", task="t"), 4, "invalid_transition"),
    (errors.BackendUnavailable("down", url="redis://x"), 5, "backend_unavailable"),
    (errors.LockTimeout("waited", path="/x.lock"), 5, "lock_timeout"),
    (errors.CorruptData("task-1.md", 3, "bad field"), 6, "corrupt"),
]


@pytest.mark.parametrize(("exc", "exit_code", "code"), ERRORS, ids=lambda v: str(v)[:20])
def test_errors_keep_exit_codes_stable_codes_and_survive_pickling(
    exc: errors.CoordError, exit_code: int, code: str
) -> None:
    assert (exc.exit_code, exc.code) == (exit_code, code)
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is type(exc)
    assert (back.message, back.details, str(back)) == (exc.message, exc.details, str(exc))
    assert back.to_dict() == exc.to_dict()


def test_corrupt_data_keeps_its_location_through_pickling() -> None:
    back = pickle.loads(pickle.dumps(errors.CorruptData("p", 3, "r")))
    assert (back.path, back.line, back.reason, back.message) == ("p", 3, "r", "p:3: r")


def test_lock_timeout_is_a_timeout_error() -> None:
    assert issubclass(errors.LockTimeout, TimeoutError)
    with pytest.raises(TimeoutError):
        raise errors.LockTimeout("waited 10s for .locks/task-1.lock")
