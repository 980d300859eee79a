"""Imports between Déjà's domains (the packages under app/), and any cycle among them.

A domain is `app.<name>` (a package, or a top-level module such as app.settings). Every
`import app.…` / `from app.… import` counts, at module level or inside a function (a lazy
import is still a dependency), under `if TYPE_CHECKING:` too. Two kinds of module are left out
as importers, because assembling domains is their job: the composition roots (app.asgi,
app.cli, app.services, app.dependencies, app.db.registry) and the HTTP route modules
(`routes.py`, `admin_routes.py`, app.observability.health), with the web dashboard (app.ui,
a composition root like the routes: its pages call the domains' services). Importing them
still counts. Exits non-zero when the domains form a cycle, when anything but app.cli imports
app.toolkit, or when anything but a composition root imports app.ui.

    python scripts/import_graph.py          # the graph and the verdict
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app"
# Composition roots: they assemble every domain and nothing below them imports them back
# (checked: an import of one from a domain module is an edge like any other).
COMPOSITION = {"app.asgi", "app.cli", "app.services", "app.dependencies", "app.db.registry"}
# What serving code may not import: the tooling lives apart (app.toolkit), reached only from the CLI.
TOOLKIT = "toolkit"
# The web dashboard: an outer layer over the domains, like the routes; only the composition
# roots (app.asgi mounts it, app.db.registry lists its tables) may import it.
UI = "app.ui"


# Known wrong-way imports, each with the reason it is still there. An import listed here is
# left out of the graph and printed; any other cycle fails. Remove an entry once it is fixed.
KNOWN: dict[tuple[str, str], str] = {}


def is_web_layer(module: str) -> bool:
    """HTTP route modules: the outer layer, which may use the composition root (Services, the
    dependency providers) and several domains' services, as a request needs."""
    last = module.rsplit(".", 1)[-1]
    return (
        last in {"routes", "admin_routes"}
        or module == "app.observability.health"
        or module == UI
        or module.startswith(f"{UI}.")
    )


def domain_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "app" or len(parts) < 2:
        return None
    return parts[1]


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            found |= {f"{target}.{alias.name}" for alias in node.names}
    return {name for name in found if name.startswith("app.")}


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for path in sorted(APP.rglob("*.py")):
        if "_resources" in path.parts:
            continue
        module = module_name(path)
        source = domain_of(module)
        if source is None or module in COMPOSITION or is_web_layer(module):
            continue
        edges[source]
        for target in imports_of(path):
            if any(
                module == known_source and target.startswith(known_target)
                for known_source, known_target in KNOWN
            ):
                continue
            other = domain_of(target)
            if (other is not None and other != source and (APP / other).exists()) or (
                other is not None and (APP / f"{other}.py").exists() and other != source
            ):
                edges[source].add(other)  # type: ignore[arg-type]
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one domain (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def main() -> int:
    edges = graph()
    for (source, target), reason in KNOWN.items():
        print(f"known, left out: {source} -> {target}: {reason}")
    for source in sorted(edges):
        print(f"{source:14} -> {', '.join(sorted(edges[source])) or '-'}")
    bad = cycles(edges)
    for component in bad:
        print(f"cycle among: {', '.join(component)}", file=sys.stderr)
    toolkit_users = sorted(
        module_name(path)
        for path in APP.rglob("*.py")
        if "_resources" not in path.parts
        and not module_name(path).startswith(("app.toolkit", "app.cli"))
        and any(name == "app.toolkit" or name.startswith("app.toolkit.") for name in imports_of(path))
    )
    if toolkit_users:
        print(f"serving code imports app.toolkit: {', '.join(toolkit_users)}", file=sys.stderr)
    ui_users = sorted(
        module_name(path)
        for path in APP.rglob("*.py")
        if "_resources" not in path.parts
        and module_name(path) not in COMPOSITION
        and not (module_name(path) == UI or module_name(path).startswith(f"{UI}."))
        and any(name == UI or name.startswith(f"{UI}.") for name in imports_of(path))
    )
    if ui_users:
        print(f"imports app.ui (only composition roots may): {', '.join(ui_users)}", file=sys.stderr)
    if bad or toolkit_users or ui_users:
        return 1
    print(
        "no cycle between domains; app.toolkit is imported only by app.cli; "
        "app.ui only by the composition roots"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
