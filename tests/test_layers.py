"""The packages of feedapp import only the layers below them (README, "Packages and what each
may import"), and views reach data only through services."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "feedapp"

# Each unit of feedapp and the units it may import (besides itself, the standard library and
# third-party packages). A unit is a package under feedapp/ or a top-level module.
MAY_IMPORT = {
    "config": set(),
    "errors": set(),
    "schemas": {"errors"},
    "listing": {"errors"},
    "infra": {"config"},
    "observability": {"config", "infra", "cache.tracing"},
    "repository": {"config", "errors", "infra", "listing"},
    "cache": {"config", "errors", "infra", "listing", "schemas"},
    "auth": {"config", "errors", "infra"},
    "ratelimit": {"config", "errors", "infra"},
    "services": {"config", "errors", "infra", "listing", "schemas", "repository", "cache", "auth", "ratelimit"},
    "http": {"config", "errors", "schemas"},
    "api": {"config", "errors", "schemas", "listing", "http", "observability", "cache.tracing", "auth",
            "ratelimit"},
    "runtime": {"config", "errors", "infra", "observability", "repository", "cache", "auth", "ratelimit",
                "services", "listing", "schemas"},
    "": None,  # feedapp/__init__.py: create_app assembles everything
}


def unit_of(module: str) -> str:
    """'feedapp.cache.keys' -> 'cache'; 'feedapp' -> ''."""
    parts = module.split(".")[1:]
    return parts[0] if parts else ""


def package_of(path: Path) -> list:
    """['feedapp', 'api'] for feedapp/api/users.py (and for feedapp/api/__init__.py)."""
    return list(path.relative_to(PACKAGE.parent).parts[:-1])


def imports_of(source: str, package: list):
    """(line, absolute module) of every feedapp import in source, a module of package."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names = [f"{module}.{alias.name}" for alias in node.names] if node.module is None else [module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        yield from ((node.lineno, name) for name in names if name.split(".")[0] == "feedapp")


def allowed(source_unit: str, target: str) -> bool:
    permitted = MAY_IMPORT[source_unit]
    if permitted is None or unit_of(target) == source_unit:
        return True
    dotted = target.split(".", 1)[1] if "." in target else ""
    return any(dotted == name or dotted.startswith(name + ".") for name in permitted)


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_layers(path):
    source_unit = unit_of(".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts))
    if path.name == "__init__.py" and path.parent == PACKAGE:
        source_unit = ""
    assert source_unit in MAY_IMPORT, f"{source_unit}: a new unit needs its place in MAY_IMPORT and the README"
    wrong = [f"line {line}: {target}" for line, target in imports_of(path.read_text(), package_of(path))
             if not allowed(source_unit, target)]
    assert not wrong, f"feedapp/{path.relative_to(PACKAGE)} ({source_unit}) imports above its layer: {wrong}"


@pytest.mark.parametrize("path", sorted((PACKAGE / "api").glob("*.py")), ids=lambda p: p.name)
def test_views_reach_data_only_through_services(path):
    reached = [node.lineno for node in ast.walk(ast.parse(path.read_text()))
               if isinstance(node, ast.Attribute) and node.attr in ("repo", "writer", "db")]
    assert not reached, f"feedapp/api/{path.name} reaches the repository or the cache's writer: lines {reached}"


def test_the_layer_check_sees_a_wrong_import():
    """The check itself: relative and absolute imports resolve, and a view importing the
    repository or a cache internal is caught."""
    source = "from ..repository import Repository\nfrom . import users\nimport feedapp.cache.local\n"
    targets = [target for _, target in imports_of(source, ["feedapp", "api"])]
    assert targets == ["feedapp.repository", "feedapp.api.users", "feedapp.cache.local"]
    assert [allowed("api", target) for target in targets] == [False, True, False]
    assert allowed("api", "feedapp.cache.tracing")
