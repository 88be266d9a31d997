"""The shape of the project's own imports (installation, models, training), read from the source.

Each .py file is parsed with `ast`; every import counts, at the top of a module or inside a function
(a function-level import that closes a cycle is still a cycle, only a later one). Relative imports are
resolved against the importing module's package. The graph has one node per module, a package being
its `__init__.py`, and an edge A -> B when A imports B:

* `import a.b.c` -> a.b.c (not to a's and a.b's `__init__`, which Python runs first: a package
  importing one of its own modules would otherwise always be a cycle);
* `from a.b import name` -> a.b.name where that is a module of the project (a submodule), else a.b
  (the package's `__init__`, or the module, that defines `name`).

So a package's `__init__` importing its submodules, and a submodule importing a sibling with
`from . import sibling` or `from .sibling import x`, are edges between those modules only; they close
a cycle only where the submodule also imports a name from its package's `__init__`, which then runs
half-built. No exception is made beyond this rule.

Checked: (a) the graph has no cycle but those in KNOWN_CYCLES; (b) no module imports a private
name (one leading underscore, not a dunder) of another project module, by `from m import _x` or as an
attribute `m._x` of a module it imported; (c) dependencies point one way: models imports neither
installation nor training, installation does not import training, training does not import
installation.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("installation", "models", "training")


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every .py under the project's packages."""
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _base(module: str, node: ast.ImportFrom) -> str:
    """The absolute module a `from ... import` reads from."""
    if not node.level:
        return node.module or ""
    package = module if _is_package(module) else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def _imports(module: str) -> tuple[set[str], list[str]]:
    """(the project modules `module` imports, the private names of other project modules it uses)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"), filename=str(MODULES[module]))
    edges, private = set(), []
    aliases: dict[str, str] = {}            # a name bound in this module -> the project module it is
    roots = set()                           # names bound by a plain `import a.b` (a)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in MODULES:
                    edges.add(alias.name)
                    if alias.asname:
                        aliases[alias.asname] = alias.name
                    else:
                        roots.add(alias.name.partition(".")[0])
        elif isinstance(node, ast.ImportFrom):
            base = _base(module, node)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in MODULES:
                    edges.add(sub)
                    aliases[alias.asname or alias.name] = sub
                elif base in MODULES:
                    edges.add(base)
                    if _private(alias.name) and base != module:
                        private.append(f"{module}:{node.lineno} imports {alias.name} from {base}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            owner = aliases.get(node.value.id) if isinstance(node.value, ast.Name) else None
            if owner is None:
                dotted = ast.unparse(node.value)
                owner = dotted if dotted in MODULES and dotted.partition(".")[0] in roots else None
            if owner is not None and owner != module:
                private.append(f"{module}:{node.lineno} uses {owner}.{node.attr}")
    edges.discard(module)
    return edges, private


GRAPH = {m: _imports(m)[0] for m in MODULES}


def _tangles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan): each holds a cycle."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(frozenset(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _cycle(graph: dict[str, set[str]], component: frozenset[str]) -> list[str]:
    """A shortest cycle through the first module of a component, for the message."""
    start = min(component)
    came = {start: None}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v] & component):
            if w == start:
                path = [v]
                while came[path[-1]] is not None:
                    path.append(came[path[-1]])
                return path[::-1] + [start]
            if w not in came:
                came[w] = v
                queue.append(w)
    raise AssertionError(f"no cycle in {sorted(component)}")


# Cycles known and left for now (each import inside a function, so both modules load): remove one
# here when it is broken, and the test says so. None at present.
KNOWN_CYCLES: set = set()


def test_the_graph_sees_the_project():
    assert {"installation.settings", "installation.course", "installation.symptoms", "models.latent",
            "training.evaluate"} <= set(MODULES)
    assert "installation.symptoms.fading" in GRAPH["installation.symptoms"]          # a package's submodules
    assert "installation.symptoms" in GRAPH["installation.course"]
    assert "installation.settings" in GRAPH["installation.inputs.learn"]             # absolute
    assert "installation.output" in GRAPH["installation.device_output"]              # relative
    assert "installation.faders" in GRAPH["installation.calibration"]                # inside a function


def test_no_import_cycle():
    tangles = _tangles(GRAPH)
    new = [" -> ".join(_cycle(GRAPH, c)) for c in tangles if c not in KNOWN_CYCLES]
    assert not new, "import cycles:\n" + "\n".join(new)
    gone = [sorted(c) for c in KNOWN_CYCLES if c not in tangles]
    assert not gone, f"no longer a cycle, take it out of KNOWN_CYCLES: {gone}"


def test_the_cycle_finder_finds_one():
    graph = {"a": {"b"}, "b": {"c", "a"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _tangles(graph) == [frozenset("abc")] and _cycle(graph, frozenset("abc")) == ["a", "b", "a"]
    assert _tangles({"a": {"b"}, "b": set()}) == []


def test_no_module_uses_another_modules_private_names():
    private = [line for m in MODULES for line in _imports(m)[1]]
    assert not private, "\n".join(private)


def test_dependencies_point_one_way():
    forbidden = {"models": ("installation", "training"), "installation": ("training",), "training": ("installation",)}
    wrong = [f"{m} imports {target}" for m, targets in GRAPH.items() for target in sorted(targets)
             if target.split(".")[0] in forbidden[m.split(".")[0]]]
    assert not wrong, "\n".join(wrong)


_FIRST_IMPORT = """
import importlib, sys
failed = []
for name in sys.argv[1:]:
    for loaded in [k for k in sys.modules if k.split(".")[0] in ("installation", "models", "training")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as e:
        failed.append(f"{name}: {type(e).__name__}: {e}")
print("\\n".join(failed))
"""


def test_every_module_can_be_the_first_one_imported():
    """What the graph above cannot see: a package whose `__init__` imports a module that imports
    the package back runs half-built when that module is imported first (`import
    installation.inputs.keys` before `installation.settings`, say). Each module is imported first,
    in one fresh process, with the project's modules forgotten between them."""
    import subprocess
    import sys
    names = sorted(name for name in MODULES if not name.endswith("__main__"))
    r = subprocess.run([sys.executable, "-c", _FIRST_IMPORT, *names], capture_output=True, text=True, cwd=ROOT,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "", r.stdout
