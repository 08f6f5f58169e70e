"""Exercise mode (minift.exercises): stubs generated from the library, the grader, notebooks on a student's code."""

from __future__ import annotations

import importlib
import inspect

import jax.numpy as jnp
import numpy as np
import pytest

from minift import exercises as E
from minift import loss

MODULES = tuple(dict.fromkeys(ex.module for ex in E.EXERCISES))


@pytest.fixture
def stubs(tmp_path):
    E.write_stubs(tmp_path)
    return tmp_path


def test_every_exercise_names_a_library_function_and_existing_tests(repo):
    for ex in E.EXERCISES:
        fn = getattr(importlib.import_module(ex.module), ex.name)
        assert inspect.getdoc(fn) and "§" in inspect.getdoc(fn), f"{ex.key} needs a docstring naming its section"
        for test in ex.tests:
            file, name = test.split("::")
            assert f"def {name}(" in (repo / "tests" / file).read_text(encoding="utf-8"), test
    assert [E.exercise_of_test(f"tests/{ex.tests[0]}[x]") for ex in E.EXERCISES] == list(E.EXERCISES)


def test_stubs_keep_signature_and_docstring_and_only_raise(stubs):
    for module in MODULES:
        student = E.load_student_module(stubs, module)
        library = importlib.import_module(module)
        for ex in (ex for ex in E.EXERCISES if ex.module == module):
            mine, theirs = getattr(student, ex.name), getattr(library, ex.name)
            assert inspect.signature(mine) == inspect.signature(theirs)
            assert inspect.getdoc(mine) == inspect.getdoc(theirs)  # the equation, shapes and hints
            assert not E.is_written(mine) and E.is_written(theirs)
            with pytest.raises(NotImplementedError, match="docstring"):
                mine(*[None] * len(inspect.signature(mine).parameters))


def test_stubs_are_generated_fresh_and_never_overwrite_a_students_work(tmp_path):
    assert len(E.write_stubs(tmp_path)) == len(MODULES)
    mine = E.student_file(tmp_path, "minift.loss")
    mine.write_text(mine.read_text() + "\n# my work\n")
    assert E.write_stubs(tmp_path) == []  # kept
    assert mine.read_text().endswith("# my work\n")
    assert E.stub_source("minift.loss") == E.student_file(tmp_path, "minift.optim").parent.joinpath(
        "loss.py").read_text().removesuffix("\n# my work\n")  # the same generation each time


def test_install_puts_the_students_written_functions_everywhere_in_minift(tmp_path, monkeypatch):
    E.write_stubs(tmp_path)
    path = E.student_file(tmp_path, "minift.loss")
    # The student wrote token_log_probs (the textbook way) and nothing else.
    path.write_text(path.read_text().replace(
        'def token_log_probs(logits: Float[Array, "*B V"], targets: Int[Array, "*B"]) -> Float[Array, "*B"]:',
        'def token_log_probs(logits, targets):\n    """mine"""\n    logp = jax.nn.log_softmax(logits, axis=-1)\n'
        '    return jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0] + 0.0\n\n\n'
        'def _unused(logits, targets):', 1))
    monkeypatch.setenv("MINIFT_EXERCISES", str(tmp_path))
    library = loss.token_log_probs
    try:
        installed = E.install()
        assert installed.yours == ["token_log_probs"] and "sft_loss" in installed.minift
        assert loss.token_log_probs is not library and inspect.getdoc(loss.token_log_probs) == "mine"
        # library code that calls it now runs the student's: the SFT loss through nll_sum_and_count
        logits, targets = jnp.zeros((1, 3, 5)), jnp.array([[1, 2, 3]])
        assert float(loss.sft_loss(logits, targets, jnp.ones((1, 3)))) == pytest.approx(np.log(5))
    finally:
        E.uninstall()
    assert loss.token_log_probs is library
    monkeypatch.delenv("MINIFT_EXERCISES")
    assert E.install().yours == []  # no folder: exercise mode is off


@pytest.mark.slow
def test_grader_scores_the_library_100_and_stubs_0_for_every_function(tmp_path):
    """Two grading runs (one pytest process each): the library's own code as the student's, then
    untouched stubs with one wrong sft_loss (prompt tokens left in the loss)."""
    solutions, stubs = tmp_path / "solutions", tmp_path / "stubs"
    for module in MODULES:
        E.student_file(solutions, module).parent.mkdir(parents=True, exist_ok=True)
        E.student_file(solutions, module).write_text(E.stub_source(module, solutions=True), encoding="utf-8")
    E.write_stubs(stubs)
    wrong = E.student_file(stubs, "minift.loss")
    wrong.write_text(wrong.read_text() + (
        "\n\ndef sft_loss(logits, targets, loss_mask, reduction='token'):\n"
        "    return -jnp.mean(token_log_probs_ok(logits, targets))  # every token, the prompt too\n\n\n"
        "def token_log_probs_ok(logits, targets):\n"
        "    return jnp.take_along_axis(jax.nn.log_softmax(logits, -1), targets[..., None], -1)[..., 0]\n"),
        encoding="utf-8")

    for score in E.grade(solutions):
        assert (score.passed, score.first_failure) == (score.total, ""), score.exercise.name
        assert score.total >= len(score.exercise.tests)
    scores = {s.exercise.name: s for s in E.grade(stubs)}
    for name, score in scores.items():
        if name != "sft_loss":
            assert score.passed == 0 and "not written yet" in score.first_failure, name
    sft = scores["sft_loss"]
    assert sft.passed < sft.total  # a wrong function is not complete
    assert sft.first_failure.startswith("sft loss matches loop reference")  # and the grader says which check, in words


def test_in_words():
    assert E.in_words("tests/test_loss.py::test_prompt_positions_get_exactly_zero_gradient[token]") == (
        "prompt positions get exactly zero gradient (token)")
