"""The package's layout rules, read from the source with ``ast`` (docs/architecture.md explains them).

- A module imports only from its own layer or from lower ones (function-level imports count too).
- Nothing in the library imports ``yolo3.cli``; optional third-party packages only in ``backends``.
- No function in ``yolo3/`` is longer than 80 lines; every root script is under 40 lines; no more
  than 6 modules sit directly in ``yolo3/``.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "yolo3"

#: rank of each layer: a module may import its own layer and layers of a lower rank
LAYERS = {
    "yolo3.errors": 0,
    "yolo3.tf_logging": 0,
    "yolo3.resources": 0,
    "yolo3.core": 1,
    "yolo3.tracking": 1,  # NumPy and SciPy only: must not reach TensorFlow through core
    "yolo3.modeling": 2,
    "yolo3.datasets": 2,
    "yolo3.ops": 3,
    "yolo3.backends": 4,
    "yolo3.inference": 5,
    "yolo3.evaluation": 6,
    "yolo3.training": 7,
    "yolo3.export": 8,
    "yolo3.cli": 9,
    "yolo3": 10,  # the package's __init__: the public API re-exports every layer
}
#: layers of the same rank that must not import each other
SIBLINGS_APART = {("yolo3.modeling", "yolo3.datasets"), ("yolo3.datasets", "yolo3.modeling"),
                   ("yolo3.tracking", "yolo3.core"), ("yolo3.core", "yolo3.tracking")}
#: optional third-party packages and where they may be imported: the runtimes in yolo3.backends
#: (and the CLI, which checks they are installed before a long run); TensorBoard by training's callback
OPTIONAL = {"onnx": ("yolo3.backends", "yolo3.cli"), "onnxruntime": ("yolo3.backends", "yolo3.cli"),
            "tf2onnx": ("yolo3.backends", "yolo3.cli"), "ai_edge_litert": ("yolo3.backends",),
            "openvino": ("yolo3.backends", "yolo3.cli"), "tensorboard": ("yolo3.training",)}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def layer_of(module: str) -> str:
    """The longest LAYERS key that is ``module`` or a parent package of it."""
    best = None
    for name in LAYERS:
        if (module == name or module.startswith(name + ".")) and (best is None or len(name) > len(best)):
            best = name
    assert best is not None, module
    return best


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in the file, relative ones resolved."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.append((node.lineno, target))
            # ``from . import x`` / ``from .pkg import sub``: the submodules count as well
            out += [(node.lineno, f"{target}.{alias.name}") for alias in node.names
                    if (PACKAGE.parent / Path(*f"{target}.{alias.name}".split("."))).with_suffix(".py").exists()
                    or (PACKAGE.parent / Path(*f"{target}.{alias.name}".split("."))).is_dir()]
    return out


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_the_layer_table_covers_every_package_module():
    uncovered = [module_name(p) for p in SOURCES
                 if not any(module_name(p) == k or module_name(p).startswith(k + ".") for k in LAYERS)]
    assert SOURCES and not uncovered, uncovered


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_a_layer_above_its_own(path):
    module = module_name(path)
    own = layer_of(module)
    wrong = []
    for line, target in imported_modules(path):
        top = target.split(".")[0]
        if top in OPTIONAL and not any(module == a or module.startswith(a + ".") for a in OPTIONAL[top]):
            wrong.append(f"line {line}: optional package {target} outside {', '.join(OPTIONAL[top])}")
        if top != "yolo3":
            continue
        other = layer_of(target)
        if other == own:
            continue
        if LAYERS[other] > LAYERS[own] or (own, other) in SIBLINGS_APART:
            wrong.append(f"line {line}: {module} ({own}, rank {LAYERS[own]}) imports {target} "
                         f"({other}, rank {LAYERS[other]})")
    assert not wrong, "\n".join(wrong)


def test_the_layering_check_catches_an_upward_import(tmp_path, monkeypatch):
    """The check itself: a core module importing the inference layer is reported."""
    fake = PACKAGE / "core" / "_fake_upward_import_for_test.py"
    fake.write_text("from ..inference.detector import Detector\n", encoding="utf-8")
    try:
        with pytest.raises(AssertionError, match="imports yolo3.inference.detector"):
            test_no_module_imports_a_layer_above_its_own(fake)
    finally:
        fake.unlink()


def test_no_function_in_the_package_is_longer_than_80_lines():
    long = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > 80:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    assert not long, "\n".join(long)


def test_root_scripts_are_shims_under_40_lines():
    scripts = sorted(p for p in ROOT.glob("*.py"))
    assert {p.name for p in scripts} >= {"convert.py", "yolo_video.py", "train.py", "train_bottleneck.py",
                                         "kmeans.py", "voc_annotation.py", "eval.py", "export.py"}
    long = [f"{p.name}: {len(p.read_text().splitlines())} lines" for p in scripts
            if len(p.read_text().splitlines()) >= 40]
    assert not long, "\n".join(long)


def test_at_most_six_modules_directly_in_the_package():
    modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(modules) <= 6, modules


def test_no_script_imports_another_script():
    scripts = {p.stem for p in ROOT.glob("*.py")}
    for path in ROOT.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not set(names) & scripts, f"{path.name} imports {set(names) & scripts}"


def test_every_package_error_derives_from_yolo3error():
    errors = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and node.name.endswith("Error") and node.name != "Yolo3Error":
                errors.append((module_name(path), node.name))
    import importlib

    from yolo3.errors import Yolo3Error

    bad = [f"{m}.{n}" for m, n in errors if not issubclass(getattr(importlib.import_module(m), n), Yolo3Error)]
    assert errors and not bad, bad


def test_function_level_imports_only_for_optional_packages():
    """A hidden import inside a function hides a dependency from this test and from readers; only the
    optional packages (absent on many installs) and tf_logging's captured TensorFlow import are deferred."""
    allowed = set(OPTIONAL) | {"pydot"}
    wrong = []
    for path in SOURCES:
        for fn in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.Import):
                    tops = {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom):
                    tops = {"." if node.level else (node.module or "").split(".")[0]}
                else:
                    continue
                if path.name == "tf_logging.py" and tops == {"tensorflow"}:
                    continue
                if not tops <= allowed:
                    wrong.append(f"{path.relative_to(ROOT)}:{node.lineno} in {fn.name}(): {', '.join(sorted(tops))}")
    assert not wrong, "\n".join(wrong)
