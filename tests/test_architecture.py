"""The package's layout keeps to docs/ARCHITECTURE.md: no import circles, inference apart from
training, formats apart from the model, a thin command line, and a top level that holds only
the public face and the shared vocabulary.

Imports are read from the source (ast), wherever they stand: at module level, inside a
function, under `if TYPE_CHECKING:`. `from X import name` counts as an import of the
module X.name where that is a module, else of X.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from functools import cache
from pathlib import Path

PACKAGE = "ibfp_cli"
PACKAGE_DIR = Path(__file__).resolve().parents[1] / PACKAGE

TOP_LEVEL_MODULES = {
    "__init__",  # the public face: the scripting API, loaded lazily
    "__main__",  # python -m ibfp_cli
    "annotations",  # the shared vocabulary, reachable from every stage ...
    "boxes",
    "config",
    "errors",
    "progress",
    "wording",
}
SUBPACKAGES = {
    "media",
    "tracking",
    "annotate",
    "batch",
    "dataset",
    "formats",
    "model",
    "evaluate",
    "train",
    "correct",
    "cli",
}
"""Each a stage of the flow (docs/ARCHITECTURE.md names them in order): a new one goes there too."""
INFERENCE = ("media", "tracking", "annotate", "batch", "dataset", "formats", "model", "evaluate")
"""The stages a user's videos go through; none of them may need the training code."""
VOCABULARY = {f"{PACKAGE}.{name}" for name in TOP_LEVEL_MODULES - {"__init__", "__main__"}}
TRACKER_IMPLEMENTATIONS = (f"{PACKAGE}.tracking.tracker", f"{PACKAGE}.tracking.opencv_trackers")
CLI_MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name: its __init__)."""
    return {module_name(p): p for p in sorted(PACKAGE_DIR.rglob("*.py")) if "__pycache__" not in p.parts}


def imported(name: str, path: Path) -> set[str]:
    """The package's modules that module `name` (at `path`) imports."""
    known = modules()
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                found.add(submodule if submodule in known else source)
    return {m for m in found if m in known and m != name}


@cache
def graph() -> dict[str, frozenset[str]]:
    return {name: frozenset(imported(name, path)) for name, path in modules().items()}


def reachable(start: Iterable[str]) -> dict[str, list[str]]:
    """Every module imported directly or indirectly from `start`, with one chain of imports to it."""
    chains = {name: [name] for name in start}
    todo = list(chains)
    while todo:
        name = todo.pop()
        for target in sorted(graph()[name]):
            if target not in chains:
                chains[target] = [*chains[name], target]
                todo.append(target)
    return chains


def circles() -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(name: str) -> None:
        index[name] = low[name] = len(index)
        stack.append(name)
        on_stack.add(name)
        for target in sorted(graph()[name]):
            if target not in index:
                visit(target)
                low[name] = min(low[name], low[target])
            elif target in on_stack:
                low[name] = min(low[name], index[target])
        if low[name] == index[name]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == name:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for name in sorted(graph()):
        if name not in index:
            visit(name)
    return found


def in_stage(name: str, *stages: str) -> bool:
    return any(name == f"{PACKAGE}.{s}" or name.startswith(f"{PACKAGE}.{s}.") for s in stages)


def test_the_import_walk_sees_the_package() -> None:
    names = set(graph())
    assert {f"{PACKAGE}.cli.app", f"{PACKAGE}.tracking.registry", f"{PACKAGE}.batch.jobs"} <= names
    # relative, absolute and function-level imports are all seen
    assert f"{PACKAGE}.tracking.contract" in graph()[f"{PACKAGE}.tracking.registry"]
    assert f"{PACKAGE}.tracking.tracker" in graph()[f"{PACKAGE}.evaluate.runner"]  # inside a function
    assert f"{PACKAGE}.batch.ray_runner" in graph()[f"{PACKAGE}.batch.runner"]  # inside a function


def test_no_import_circles() -> None:
    assert circles() == []


def test_inference_never_imports_training() -> None:
    stages = [name for name in graph() if in_stage(name, *INFERENCE)]
    training = {name: chain for name, chain in reachable(stages).items() if in_stage(name, "train")}
    assert not training, "inference reaches training: " + "; ".join(" -> ".join(c) for c in training.values())


def test_formats_never_import_the_model_or_the_trackers() -> None:
    formats = [name for name in graph() if in_stage(name, "formats")]
    found = {name: chain for name, chain in reachable(formats).items() if in_stage(name, "model", "tracking")}
    assert not found, "formats reach: " + "; ".join(" -> ".join(c) for c in found.values())


def test_shared_vocabulary_imports_only_itself() -> None:
    for name in VOCABULARY:
        assert graph()[name] <= VOCABULARY, f"{name} imports {sorted(graph()[name] - VOCABULARY)}"


def test_media_imports_only_the_shared_vocabulary() -> None:
    media = [name for name in graph() if in_stage(name, "media")]
    found = {n: c for n, c in reachable(media).items() if not in_stage(n, "media") and n not in VOCABULARY}
    assert not found, "media reaches: " + "; ".join(" -> ".join(c) for c in found.values())


def test_no_stage_imports_the_command_line() -> None:
    stages = [name for name in graph() if in_stage(name, *INFERENCE, "train")]
    found = {name: chain for name, chain in reachable(stages).items() if in_stage(name, "cli")}
    assert not found, "a stage reaches the command line: " + "; ".join(" -> ".join(c) for c in found.values())


def test_tracker_implementations_do_not_import_the_registry() -> None:
    for name in TRACKER_IMPLEMENTATIONS:
        assert f"{PACKAGE}.tracking.registry" not in reachable([name]), name


def test_command_line_modules_are_short() -> None:
    long = {}
    for path in sorted((PACKAGE_DIR / "cli").glob("*.py")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > CLI_MAX_LINES:
            long[path.name] = lines
    assert not long, f"command-line modules over {CLI_MAX_LINES} lines: {long}"


def test_top_level_holds_only_the_public_face_and_the_shared_vocabulary() -> None:
    top_modules = {p.stem for p in PACKAGE_DIR.glob("*.py")}
    packages = {p.name for p in PACKAGE_DIR.iterdir() if (p / "__init__.py").is_file()}
    assert top_modules == TOP_LEVEL_MODULES
    assert packages == SUBPACKAGES


def test_files_found_beside_the_code_are_where_the_code_looks() -> None:
    """Modules that find files by their own path (weights, the model code the ONNX cache key
    hashes, the validation split) still find them from their subpackage."""
    from ibfp_cli.tracking import onnx_export, weights
    from ibfp_cli.train import prepare

    assert weights.SHIPPED_DIR == PACKAGE_DIR.parent / "weights"
    assert PACKAGE_DIR / "model" / "ibfp.py" in onnx_export._CODE
    assert prepare.VAL_SPLIT_FILE.is_file()
