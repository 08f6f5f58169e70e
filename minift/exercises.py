"""Exercise mode: the student writes the equations, and minift's own tests grade them.

Every function listed in ``EXERCISES`` is one equation of the article (§3.1–§5). ``write_stubs``
generates, from the library's source, a student file per module with each function's signature
and docstring (the equation, the shapes, the hints) and a body that only raises
``NotImplementedError`` -- generated each time, so the stubs can never drift from the library.
The student fills the bodies in; then

* ``minift grade`` (``make grade``, ``minift.grading``) runs the tests that check each equation --
  the same tests that check minift -- with the student's function put in place of the library's
  during its tests only (``patched``), and prints a score per function, all or nothing, and the
  first check that failed, in English and Vietnamese. ``HIDDEN`` and ``FORBIDDEN_MODULES`` here
  say what a student file may not import; ``grading.refusals`` enforces it.
* ``install()`` (the first code cell of every notebook) does the same for a whole notebook when
  ``MINIFT_EXERCISES=<folder>`` is set: each function the student has written replaces the
  library's everywhere in minift, so the notebook trains with the student's loss and draws the
  student's own gradients. Functions still left as stubs stay minift's.

A student function replaces the library's in every minift module that holds it (``from
minift.loss import token_log_probs`` copies the reference into the importing module), so
library code that calls it -- the train step calling ``token_log_probs`` -- runs the student's.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Callable, Iterator, NamedTuple

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FOLDER = Path("exercises")
NOT_WRITTEN = "write this function: the docstring has the equation, the shapes and hints"


class Exercise(NamedTuple):
    """One function to write, where it sits in the course, and the tests that grade it."""

    module: str  # e.g. "minift.loss"
    name: str  # e.g. "sft_loss"
    section: str  # the article's section
    notebook: str  # the notebook that uses it
    minutes: int  # expected time for a student who has read the section
    tests: tuple[str, ...]  # "file.py::test_name" under tests/ (every parametrisation counts)
    mistake: str  # the common mistake its tests catch

    @property
    def key(self) -> str:
        return f"{self.module}.{self.name}"


EXERCISES: tuple[Exercise, ...] = (
    Exercise("minift.loss", "token_log_probs", "§3.1", "01", 15,
             ("test_loss.py::test_token_log_probs_matches_loop_reference",
              "test_loss.py::test_token_log_probs_stable_at_huge_logits",
              "test_loss.py::test_token_log_probs_promotes_half_precision_to_float32"),
             "log(softmax(z)) instead of a log-softmax: inf/NaN once logits are large; bf16 arithmetic left in bf16"),
    Exercise("minift.loss", "sequence_log_prob", "§3.1", "01", 10,
             ("test_loss.py::test_sequence_log_prob_is_log_of_product_of_probabilities",),
             "summing the padding positions too (forgetting the mask)"),
    Exercise("minift.loss", "sft_loss", "§3.2", "02", 25,
             ("test_loss.py::test_sft_loss_matches_loop_reference",
              "test_loss.py::test_reductions_differ_for_unequal_lengths_and_agree_for_equal",
              "test_loss.py::test_sequence_reduction_averages_over_the_rows_that_have_a_response",
              "test_loss.py::test_stable_at_huge_logits",
              "test_loss.py::test_all_masked_batch_gives_zero_loss_and_zero_finite_grads",
              "test_loss.py::test_gradient_matches_closed_form",
              "test_loss.py::test_prompt_positions_get_exactly_zero_gradient"),
             "prompt tokens left in the loss; a bare .mean() over padding; dividing by B when a row has no response; "
             "0/0 = NaN on an all-masked batch"),
    Exercise("minift.optim", "gradient_descent", "§3.3", "03", 5,
             ("test_optim.py::test_gradient_descent_is_theta_minus_lr_grad",
              "test_optim.py::test_gradient_descent_lowers_a_quadratic"),
             "adding the gradient instead of subtracting it"),
    Exercise("minift.optim", "adamw_update", "§3.3", "03", 30,
             ("test_optim.py::test_hand_written_adamw_matches_optax_over_100_steps",
              "test_optim.py::test_adamw_first_step_is_lr_times_sign_of_gradient"),
             "no bias correction; weight decay added to the gradient (L2) instead of decoupled"),
    Exercise("minift.rlhf.objectives", "bradley_terry_loss", "§4", "05", 15,
             ("test_rlhf_objectives.py::test_bradley_terry_matches_float64_reference",
              "test_rlhf_objectives.py::test_bradley_terry_gradient_is_closed_form",
              "test_rlhf_objectives.py::test_bradley_terry_stable_at_huge_margins"),
             "-log(sigmoid(m)) written literally: log(0) = -inf for a large negative margin"),
    Exercise("minift.rlhf.objectives", "kl_estimate", "§4", "05", 25,
             ("test_rlhf_objectives.py::test_unbiased_estimators_match_exact_kl_monte_carlo",
              "test_rlhf_objectives.py::test_k3_is_never_negative",
              "test_rlhf_objectives.py::test_k1_and_k3_are_exactly_unbiased",
              "test_rlhf_objectives.py::test_kl_of_policy_with_itself_is_exactly_zero",
              "test_rlhf_objectives.py::test_kl_estimators_are_their_formulas_away_from_the_reference",
              "test_rlhf_objectives.py::test_k3_loss_gradient_is_gradient_of_reverse_kl"),
             "the log-ratio the wrong way round (log q/p for log p/q); k2 without its ½; a k3 that can go negative"),
    Exercise("minift.rlhf.objectives", "per_token_rewards", "§4", "05", 20,
             ("test_rlhf_objectives.py::test_per_token_rewards_on_ragged_masks",
              "test_rlhf_objectives.py::test_per_token_rewards_carry_no_gradient_and_reject_negative_beta"),
             "the reward R(x, y) put on the last column instead of each answer's last real token; a gradient "
             "left flowing into the reward model's score"),
    Exercise("minift.rlhf.ppo_objective", "gae", "§4", "05", 25,
             ("test_rlhf_ppo_objective.py::test_gae_matches_loop_on_ragged_masks",
              "test_rlhf_ppo_objective.py::test_gae_lambda_one_is_reward_to_go_minus_value"),
             "bootstrapping from the value of a padding position after the answer has ended"),
    Exercise("minift.rlhf.ppo_objective", "ppo_clip_loss", "§4", "05", 20,
             ("test_rlhf_ppo_objective.py::test_ppo_clip_loss_matches_reference",
              "test_rlhf_ppo_objective.py::test_ppo_loss_sends_no_gradient_into_the_advantages_or_the_old_policy",
              "test_rlhf_ppo_objective.py::test_ppo_at_ratio_one_loss_is_minus_mean_advantage_but_gradient_is_not_zero",
              "test_rlhf_ppo_objective.py::test_ppo_gradient_is_zero_exactly_in_the_clipped_region",
              "test_rlhf_ppo_objective.py::test_ppo_padding_gets_no_gradient_and_changes_nothing"),
             "max instead of min (the surrogate must be pessimistic); averaging over padding; a gradient through the advantages"),
    Exercise("minift.rlhf.ppo_objective", "ppo_diagnostics", "§4", "05", 10,
             ("test_rlhf_ppo_objective.py::test_ppo_diagnostics_match_a_standard_definition",
              "test_rlhf_ppo_objective.py::test_ppo_diagnostics_at_ratio_one_and_in_the_clipped_region"),
             "the ratio the wrong way round (pi_old / pi_theta); counting padding tokens in the fractions"),
    Exercise("minift.calibration", "expected_calibration_error", "§5", "06", 15,
             ("test_calibration.py::test_ece_by_hand", "test_calibration.py::test_pool_bins_equals_binning_the_pooled_answers"),
             "an unweighted mean over bins (each bin must weigh n_b / n); empty bins counted"),
)


# Names a student file does not import: library helpers that would do an exercise's work for it. The
# stub says so in its header; the answer key (``stub_source(..., solutions=True)``) writes them out.
HIDDEN = {
    "minift.loss": ("nll_sum_and_count", "lm_loss"),  # most of sft_loss
    "minift.optim": ("make_optimizer",),  # optax's AdamW in one call
    "minift.calibration": ("reliability_bins", "summarise_confidence", "pool_bins"),  # the binning, or the ECE itself
}
# Modules a student file may not import: optax has AdamW, cross-entropies and KL divergences ready-made;
# importlib and a whole minift module would reach the library's own version of an exercise.
FORBIDDEN_MODULES = ("optax", "importlib")

def student_file(folder: str | os.PathLike, module: str) -> Path:
    """``exercises/loss.py`` for ``minift.loss``, ``exercises/rlhf_objectives.py`` for ``minift.rlhf.objectives``."""
    return Path(folder) / (module.removeprefix("minift.").replace(".", "_") + ".py")


def _module_source(module: str) -> tuple[str, ast.Module]:
    source = inspect.getsource(importlib.import_module(module))
    return source, ast.parse(source)


def _forbidden_import(node: ast.stmt) -> bool:
    """An ``import optax`` (or another of ``FORBIDDEN_MODULES``) line of a library module."""
    names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
    return any(name.split(".")[0] in FORBIDDEN_MODULES for name in names)


def _hidden_helpers_called(tree: ast.Module, names: set[str], hidden: tuple[str, ...]) -> set[str]:
    """The hidden helpers that the exercises ``names`` call, directly or through one another."""
    bodies = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    needed, todo = set(), list(names)
    while todo:
        called = {n.id for n in ast.walk(bodies[todo.pop()]) if isinstance(n, ast.Name)}
        for name in called & set(hidden) - needed:
            needed.add(name)
            todo.append(name)
    return needed


def stub_source(module: str, *, solutions: bool = False) -> str:
    """The student file of ``module``: its imports, its other names, and one stub per exercise in it
    (with ``solutions``, the library's own bodies instead, and the hidden helpers they call written
    out: the teacher's answer key)."""
    source, tree = _module_source(module)
    mine = [ex for ex in EXERCISES if ex.module == module]
    names = {ex.name for ex in mine}
    hidden = HIDDEN.get(module, ())
    lines = source.splitlines()
    imports, others, helpers, stubs = [], [], [], []
    needed = _hidden_helpers_called(tree, names, hidden) if solutions else set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if not _forbidden_import(node):
                imports.append(ast.get_source_segment(source, node))
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in hidden:
            if node.name in needed:
                helpers.append(ast.get_source_segment(source, node) + "\n")
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name not in names:
            others.append(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            others += [t.id for t in targets if isinstance(t, ast.Name)]
    for ex in mine:
        node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == ex.name)
        first = min([node.lineno] + [d.lineno for d in node.decorator_list])
        if solutions:
            stubs.append("\n".join(lines[first - 1:node.end_lineno]) + "\n")
            continue
        doc_end = node.body[0].end_lineno  # the docstring: every exercise function has one
        stubs.append("\n".join(lines[first - 1:doc_end]) + f'\n    raise NotImplementedError("{NOT_WRITTEN}")\n')
    left_out = ""
    if hidden and not solutions:
        left_out = (f"Left out on purpose, because they would do an exercise's work: {', '.join(hidden)}.\n"
                    f"Cố ý không nhập, vì chúng sẽ làm thay bài tập: {', '.join(hidden)}.\n")
    header = (f'"""Your exercises from ``{module}`` ({", ".join(sorted(names))}).\n\n'
              f"Write each function's body; the docstring holds the equation and the shapes. Check with\n"
              f"``minift grade``; run the notebooks with ``MINIFT_EXERCISES=<this folder>`` to use your own.\n"
              f'Generated by ``minift exercises`` from minift\'s source: the other names of the module are\n'
              f"imported below for you to use; the solutions are not. The grader refuses a file that imports\n"
              f"{' or '.join(FORBIDDEN_MODULES)}, a whole minift module, or minift's own version of an exercise.\n"
              f"{left_out}"
              f'"""\n')
    if solutions:
        header = f'"""The answer key of ``{module}``: minift\'s own bodies of {", ".join(sorted(names))}."""\n'
    imported = f"from {module} import {', '.join(sorted(others))}  # noqa: F401\n" if others else ""
    return header + "\n".join(imports) + "\n" + imported + "\n\n" + "\n\n".join(helpers + stubs)


def write_stubs(folder: str | os.PathLike = DEFAULT_FOLDER, *, force: bool = False,
                solutions: bool = False) -> list[Path]:
    """Write one student file per module; an existing file is kept (a student's work is never
    overwritten) unless ``force``. ``solutions``: the answer key instead (minift's own bodies, the
    hidden helpers they call written out), for the teacher. Returns the files written."""
    written = []
    for module in dict.fromkeys(ex.module for ex in EXERCISES):
        path = student_file(folder, module)
        if path.exists() and not force:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(stub_source(module, solutions=solutions), encoding="utf-8")
        written.append(path)
    return written


def load_student_module(folder: str | os.PathLike, module: str) -> ModuleType:
    """The student's file for ``module``, imported from its path (a fresh module each call)."""
    path = student_file(folder, module)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such exercise file; create the stubs with `minift exercises`")
    spec = importlib.util.spec_from_file_location(f"minift_exercises.{path.stem}", path)
    student = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(student)
    return student


def is_written(fn: Callable) -> bool:
    """False for a stub whose body is still only ``raise NotImplementedError(...)``."""
    node = ast.parse(inspect.getsource(fn).strip()).body[0]
    body = node.body[1:] if ast.get_docstring(node) is not None else node.body
    return not (len(body) == 1 and isinstance(body[0], ast.Raise)
                and "NotImplementedError" in ast.unparse(body[0]))


@contextmanager
def patched(exercise: Exercise, fn: Callable, extra: tuple[ModuleType, ...] = ()) -> Iterator[None]:
    """``fn`` in place of the library's function in every loaded minift module (and ``extra``), then back."""
    original = getattr(importlib.import_module(exercise.module), exercise.name)
    places = [m for name, m in list(sys.modules.items()) if name == "minift" or name.startswith("minift.")]
    swapped = []
    for namespace in places + list(extra):
        for attr, value in list(vars(namespace).items()):
            if value is original:
                setattr(namespace, attr, fn)
                swapped.append((namespace, attr))
    try:
        yield
    finally:
        for namespace, attr in swapped:
            setattr(namespace, attr, original)


_INSTALLED: list = []  # the patches install() made, for uninstall()


class Installed(NamedTuple):
    """What ``install`` did: the functions now the student's, and those still minift's."""

    yours: list[str]
    minift: list[str]


def install(folder: str | os.PathLike | None = None) -> Installed:
    """Exercise mode for a notebook: with ``MINIFT_EXERCISES=<folder>`` (or ``folder``), every
    function the student has written replaces minift's for the rest of the process. Without
    either, nothing changes. A student file that does not import raises its own error."""
    folder = folder or os.environ.get("MINIFT_EXERCISES")
    if not folder:
        return Installed([], [ex.name for ex in EXERCISES])
    if not Path(folder).is_dir() and (REPO / folder).is_dir():
        folder = REPO / folder  # Jupyter runs a notebook in notebooks/; "exercises" means the repository's
    yours, library = [], []
    students: dict[str, ModuleType] = {}
    for ex in EXERCISES:
        if ex.module not in students:
            students[ex.module] = load_student_module(folder, ex.module)
        fn = getattr(students[ex.module], ex.name)
        if is_written(fn):
            patch = patched(ex, fn)
            patch.__enter__()  # kept in place: the notebook runs with it from now on
            _INSTALLED.append(patch)
            yours.append(ex.name)
        else:
            library.append(ex.name)
    return Installed(yours, library)


def uninstall() -> None:
    """Put minift's own functions back (undo every ``install``)."""
    while _INSTALLED:
        _INSTALLED.pop().__exit__(None, None, None)


def exercise_of_test(nodeid: str) -> Exercise | None:
    """The exercise a test (a pytest node id such as ``tests/test_loss.py::test_x[token]``) grades."""
    test = nodeid.split("[")[0].removeprefix("tests/")
    return next((ex for ex in EXERCISES if test in ex.tests), None)
