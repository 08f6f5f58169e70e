"""The house's rules, checked on the source: layers, no import circles, imports at the top, the face
alone parses arguments and prints, small modules, and the README's module table matches the files.

The layers (each imports only its own and lower ones), from ``../shared/DESIGN.md``:

    face     cli, __main__, commands.*, bench
    studies  evaluate, calibration, seeds, demo, rlhf.sweep, rlhf.study, rlhf.study_figure, exercises, grading, limits.*
    loops    train, loop, generate, checkpoint, hf_llama, sharding, runs, rlhf.reward_model, rlhf.ppo,
             rlhf.measure, rlhf.grpo, rlhf.dpo
    math     config, rope, lora, model, loss, optim, rlhf (the package), rlhf.objectives, rlhf.ppo_objective,
             rlhf.estimators
    data     xla_flags, files, tokenizer, data, chat, formats, preferences, rlhf.setting, course.*
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "minift"
README = PACKAGE.parent / "README.md"

LAYERS = ("data", "math", "loops", "studies", "face")
LAYER_OF = {
    "minift": "data",  # the package's __init__: a docstring, the version and the XLA:CPU flag
    "minift.xla_flags": "data",
    "minift.files": "data", "minift.tokenizer": "data", "minift.data": "data", "minift.chat": "data",
    "minift.chat_jinja": "data", "minift.gguf_vocab": "data", "minift.real_model": "data",
    "minift.formats": "data", "minift.preferences": "data", "minift.rlhf.setting": "data",
    "minift.config": "math", "minift.rope": "math", "minift.lora": "math", "minift.model": "math", "minift.loss": "math", "minift.optim": "math",
    "minift.rlhf": "math", "minift.rlhf.objectives": "math", "minift.rlhf.ppo_objective": "math",
    "minift.rlhf.estimators": "math",
    "minift.train": "loops", "minift.loop": "loops", "minift.generate": "loops", "minift.checkpoint": "loops", "minift.hf_llama": "loops",
    "minift.gguf_llama": "loops",
    "minift.sharding": "loops",
    "minift.runs": "loops", "minift.rlhf.reward_model": "loops", "minift.rlhf.ppo": "loops",
    "minift.rlhf.measure": "loops", "minift.rlhf.grpo": "loops", "minift.rlhf.dpo": "loops",
    "minift.evaluate": "studies", "minift.calibration": "studies", "minift.demo": "studies", "minift.seeds": "studies", "minift.rlhf.sweep": "studies", "minift.exercises": "studies", "minift.grading": "studies",
    "minift.rlhf.study": "studies", "minift.rlhf.study_figure": "studies",
    "minift.cli": "face", "minift.__main__": "face", "minift.bench": "face",
}
PREFIX_LAYER = {"minift.course": "data", "minift.commands": "face", "minift.limits": "studies"}
# Data tables may be long; everything else is read in one sitting.
MAX_LINES, TABLE_MODULES = 450, {"minift.course.world"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
TREES = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in MODULES.items()}


def layer(name: str) -> str:
    if name in LAYER_OF:
        return LAYER_OF[name]
    for prefix, value in PREFIX_LAYER.items():
        if name == prefix or name.startswith(prefix + "."):
            return value
    raise KeyError(f"{name} has no layer: add it to LAYER_OF in tests/test_architecture.py (and the README)")


def imports(name: str) -> set[str]:
    """The minift modules ``name`` imports (``from a import b`` counts as a.b when b is a module)."""
    found = set()
    for node in ast.walk(TREES[name]):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: imports(name) for name in MODULES}


def test_every_module_has_a_layer():
    for name in MODULES:
        assert layer(name) in LAYERS


def test_each_module_imports_only_its_own_layer_and_lower_ones():
    upward = [f"{a} ({layer(a)}) imports {b} ({layer(b)})" for a in GRAPH for b in GRAPH[a]
              if LAYERS.index(layer(b)) > LAYERS.index(layer(a))]
    assert not upward, "a lower layer imports a higher one:\n" + "\n".join(upward)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` (as a path a -> ... -> a), or None; a package's __init__
    importing its own submodules is not a circle (Python imports the package first anyway)."""
    def edges(a):
        return {b for b in graph[a] if not b.startswith(a + ".")}

    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(a: str) -> list[str] | None:
        state[a] = 1
        path.append(a)
        for b in sorted(edges(a)):
            if state.get(b) == 1:
                return path[path.index(b):] + [b]
            if b not in state and (cycle := visit(b)):
                return cycle
        path.pop()
        state[a] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_there_is_no_import_circle():
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_the_circle_finder_finds_a_long_circle_and_ignores_package_inits():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"p": {"p.x"}, "p.x": {"p"}}) is None
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_imports_are_at_the_top_of_every_module():
    hidden = []
    for name, tree in TREES.items():
        top = set(map(id, tree.body))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in top:
                hidden.append(f"{name}:{node.lineno}")
    assert not hidden, "imports inside functions or blocks hide a dependency from the reader: " + ", ".join(hidden)


def test_only_the_face_parses_arguments_and_prints():
    offenders = []
    for name, tree in TREES.items():
        if layer(name) == "face":
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                if "argparse" in modules:
                    offenders.append(f"{name}:{node.lineno} imports argparse")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                offenders.append(f"{name}:{node.lineno} prints")
    assert not offenders, "command code below the face:\n" + "\n".join(offenders)


@pytest.mark.parametrize("name", sorted(set(MODULES) - TABLE_MODULES))
def test_modules_are_small_enough_to_read_in_one_sitting(name):
    lines = MODULES[name].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{name} has {lines} lines (at most {MAX_LINES}): split it by concept"


def test_readme_module_table_names_every_module_in_its_layer():
    """Each module appears, as `name` (or its package as `package.*`), in its layer's row."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Modules"):]
    table = section[section.index("| layer"):].split("\n\n")[0]
    rows = table.splitlines()[2:]
    listed = {}
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        listed.update({entry: cells[0] for entry in re.findall(r"`([^`]+)`", cells[1])})
    assert set(listed.values()) == set(LAYERS), listed
    for name in MODULES:
        short = name.removeprefix("minift.")
        if name == "minift" or short == "__main__":
            continue
        entry = short if short in listed else short.split(".")[0] + ".*"
        assert entry in listed, f"README's module table does not list {short}"
        assert listed[entry] == layer(name), f"README puts {short} in {listed[entry]}, the code in {layer(name)}"


def test_readme_equation_table_points_at_real_functions_and_tests():
    """Every `module.function` and `test_file.py::test` the equation table names exists."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## The article, equation by equation"):text.index("## Modules")]
    tests_dir = Path(__file__).resolve().parent
    names = re.findall(r"`([^`]+)`", section)
    assert len(names) > 20
    for name in names:
        if "::" in name:
            file, test = name.split("::")
            assert re.search(rf"^def {test}\(", (tests_dir / file).read_text(encoding="utf-8"), re.M), name
        elif name.endswith(".py"):
            assert (tests_dir / name).is_file() or (tests_dir.parent / name).is_file(), name
        elif re.fullmatch(r"[a-z_.]+\.[a-zA-Z_]+", name) and not name.startswith("optax."):
            module, attr = name.rsplit(".", 1)
            tree = TREES[f"minift.{module}"]
            defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
            assert attr in defined, f"README names {name}, which minift/{module.replace('.', '/')}.py does not define"
