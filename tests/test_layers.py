"""The house keeps its floors: no import circles, no private names taken across modules, each
floor importing only from the floors below, one error base, one Keras bootstrap, short modules.

Read with ast from the source (function-level imports included), so nothing is imported and a
move that breaks a rule fails here before anything runs.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "ui")
# From the bottom up; a module may import its own floor and the floors below, never above.
FLOORS = (
    ("core.errors", "core.home", "core.files", "core.runtime"),
    ("core.spec",),
    ("core.data", "core.store", "core.store_index"),
    ("core.learn",),
    ("core.run",),
    ("core.sweeps",),
    ("core.workspace",),
    ("core.show",),
    ("core.cli", "core.__main__"),
    ("ui",),
    ("pages", "streamlit_app"),
)
# Circles between project modules that are still allowed while a move is under way: none.
ALLOWED_CIRCLES: set[frozenset[str]] = set()
# Exceptions of ours that no person ever sees (internal signals between our own pieces).
INTERNAL_EXCEPTIONS = {"ParentGone"}
MAX_LINES = 600
WHY_LONGER = "longer than 600 lines because"


@dataclass
class Module:
    name: str
    path: Path
    tree: ast.Module
    imports: dict[str, int] = field(default_factory=dict)  # module imported -> first line
    private: list[str] = field(default_factory=list)  # "line: what was taken"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_files() -> list[Path]:
    files = [p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))]
    return files + sorted((ROOT / "pages").glob("*.py")) + [ROOT / "streamlit_app.py"]


def read_modules() -> dict[str, Module]:
    modules = {}
    for path in project_files():
        name = module_name(path)
        modules[name] = Module(name, path, ast.parse(path.read_text(), str(path)))
    for module in modules.values():
        _collect(module, modules)
    return modules


def _resolve(name: str, modules: dict) -> str | None:
    """The project module a dotted name refers to (a module, or a package's __init__)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _collect(module: Module, modules: dict[str, Module]) -> None:
    aliases: dict[str, str] = {}  # local name -> project module it stands for
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _resolve(alias.name, modules)
                if target:
                    module.imports.setdefault(target, node.lineno)
                    aliases[alias.asname or alias.name.split(".")[0]] = (
                        target if alias.asname else alias.name.split(".")[0]
                    )
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            base = _resolve(node.module, modules)
            if base is None:
                continue
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                if sub in modules:  # `from core.data import catalog`: the module itself
                    module.imports.setdefault(sub, node.lineno)
                    aliases[alias.asname or alias.name] = sub
                    continue
                module.imports.setdefault(base, node.lineno)
                if alias.name.startswith("_"):
                    module.private.append(f"{node.lineno}: {node.module}.{alias.name}")
    for node in ast.walk(module.tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            module.private.append(f"{node.lineno}: {aliases[node.value.id]}.{node.attr}")


def floor_of(name: str) -> int:
    for index, floor in enumerate(FLOORS):
        if any(name == room or name.startswith(room + ".") for room in floor):
            return index
    raise AssertionError(f"{name} stands on no floor: add it to FLOORS in tests/test_layers.py")


def circles(modules: dict[str, Module]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(name: str) -> None:
        index[name] = low[name] = len(index)
        stack.append(name)
        on_stack.add(name)
        for target in modules[name].imports:
            if target == name:
                continue
            if target not in index:
                visit(target)
                low[name] = min(low[name], low[target])
            elif target in on_stack:
                low[name] = min(low[name], index[target])
        if low[name] == index[name]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == name:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for name in sorted(modules):
        if name not in index:
            visit(name)
    return found


MODULES = read_modules()


def test_the_graph_is_read_from_real_imports():
    """A check that cannot see imports proves nothing: these edges must be found."""
    imports = MODULES["core.learn.training"].imports
    assert {"core.spec.config", "core.data.registry", "core.store"} <= set(imports)
    assert "core.run.child" in MODULES["core.run.analyst"].imports  # a top-level import
    assert "core.learn.training" in MODULES["core.run.local"].imports  # a function-level one
    assert "core.data.catalog" in MODULES["core.cli.data"].imports  # `from core.data import x`


def test_no_import_circles():
    found = [group for group in circles(MODULES) if frozenset(group) not in ALLOWED_CIRCLES]
    assert found == [], "import circles: " + "; ".join(" <-> ".join(g) for g in found)


def test_each_floor_imports_only_from_its_own_floor_and_below():
    upward = []
    for module in MODULES.values():
        for target, line in module.imports.items():
            if floor_of(target) > floor_of(module.name):
                upward.append(f"{module.path.relative_to(ROOT)}:{line} imports {target}")
    assert upward == [], "imports that reach up a floor:\n" + "\n".join(upward)


def test_no_private_name_is_taken_from_another_module():
    taken = [f"{m.path.relative_to(ROOT)}:{p}" for m in MODULES.values() for p in m.private]
    assert taken == [], "private names used across modules:\n" + "\n".join(taken)


def test_every_refusal_derives_from_playground_error():
    classes: dict[str, list[str]] = {}
    where: dict[str, str] = {}
    for module in MODULES.values():
        if not module.name.startswith("core"):
            continue
        for node in ast.walk(module.tree):
            if isinstance(node, ast.ClassDef):
                bases = [
                    b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases
                ]
                classes[node.name] = bases
                where[node.name] = f"{module.path.relative_to(ROOT)}:{node.lineno}"

    def derives(name: str, seen=()) -> bool:
        if name == "PlaygroundError":
            return True
        return any(
            derives(base, (*seen, name)) for base in classes.get(name, []) if base not in seen
        )

    def is_exception(name: str, seen=()) -> bool:
        bases = classes.get(name, [])
        return any(
            base in ("Exception", "ValueError", "PlaygroundError")
            or (base not in seen and is_exception(base, (*seen, name)))
            for base in bases
        )

    errors = [name for name in classes if is_exception(name)]
    assert {"ConfigError", "StoreError", "ImageRefused", "ClusterUnreachable"} <= set(errors)
    stray = [
        f"{where[name]} {name}"
        for name in errors
        if name not in INTERNAL_EXCEPTIONS and not derives(name)
    ]
    assert stray == [], "exceptions a person may see that are not PlaygroundErrors:\n" + "\n".join(
        stray
    )


def test_the_cli_catches_playground_error_once():
    handlers = [
        node
        for node in ast.walk(MODULES["core.cli.main"].tree)
        if isinstance(node, ast.ExceptHandler)
        and "PlaygroundError" in ast.unparse(node.type or ast.Constant(None))
    ]
    assert len(handlers) == 1
    caught = {
        name.id
        for handler in ast.walk(MODULES["core.cli.main"].tree)
        if isinstance(handler, ast.ExceptHandler) and handler.type is not None
        for name in ast.walk(handler.type)
        if isinstance(name, ast.Name)
    }
    # the refusals are no longer caught one by one (a new one would have been missed)
    assert caught == {"PlaygroundError", "BrokenPipeError", "KeyboardInterrupt"}


def _writes_keras_backend(node: ast.AST) -> bool:
    if isinstance(node, ast.Assign | ast.AugAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return any(
            isinstance(t, ast.Subscript) and "KERAS_BACKEND" in ast.unparse(t.slice)
            for t in targets
        )
    if isinstance(node, ast.Call):
        text = ast.unparse(node.func)
        first = ast.unparse(node.args[0]) if node.args else ""
        if text.endswith(("environ.setdefault", "putenv")) and "KERAS_BACKEND" in first:
            return True
        if text.endswith("environ.update") and "KERAS_BACKEND" in ast.unparse(node):
            return True
    return False


def test_exactly_one_place_sets_keras_backend():
    writers = [
        f"{module.path.relative_to(ROOT)}:{node.lineno}"
        for module in MODULES.values()
        for node in ast.walk(module.tree)
        if _writes_keras_backend(node)
    ]
    assert len(writers) == 1 and writers[0].startswith("core/runtime.py"), writers


def test_modules_stay_short_or_say_why():
    long = []
    for module in MODULES.values():
        lines = len(module.path.read_text().splitlines())
        docstring = ast.get_docstring(module.tree) or ""
        if lines > MAX_LINES and WHY_LONGER not in docstring:
            long.append(f"{module.path.relative_to(ROOT)}: {lines} lines")
    assert long == [], f"modules over {MAX_LINES} lines with no reason given:\n" + "\n".join(long)


def _reads_playground_variable(node: ast.AST) -> bool:
    """os.environ.get("PLAYGROUND_..."), os.environ["PLAYGROUND_..."], os.getenv(...), "..." in
    os.environ: any read of one of our variables."""
    if isinstance(node, ast.Call) and ast.unparse(node.func).endswith(("environ.get", "getenv")):
        return bool(node.args) and "PLAYGROUND_" in ast.unparse(node.args[0])
    if isinstance(node, ast.Subscript) and ast.unparse(node.value).endswith("environ"):
        return "PLAYGROUND_" in ast.unparse(node.slice)
    if isinstance(node, ast.Compare) and any("environ" in ast.unparse(c) for c in node.comparators):
        return "PLAYGROUND_" in ast.unparse(node.left)
    return False


def test_every_playground_variable_is_read_in_core_home():
    readers = [
        f"{module.path.relative_to(ROOT)}:{node.lineno}"
        for module in MODULES.values()
        if module.name != "core.home"
        for node in ast.walk(module.tree)
        if _reads_playground_variable(node)
    ]
    assert readers == [], "PLAYGROUND_* read outside core/home.py:\n" + "\n".join(readers)
    home = MODULES["core.home"].tree
    assert sum(_reads_playground_variable(node) for node in ast.walk(home)) >= 6
