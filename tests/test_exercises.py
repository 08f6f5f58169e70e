"""Exercise mode (minift.exercises): stubs generated from the library, the grader, notebooks on a student's code."""

from __future__ import annotations

import importlib
import inspect

import jax.numpy as jnp
import numpy as np
import pytest

from minift import exercises as E
from minift import grading as G
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




# --- the grader judges: classic subtle bugs planted into the answer key each score 0 ------------------
# Each entry: (round, exercise, the bug, the function that replaces the answer key's). A round is one
# grading run (one pytest process) over the exercises planted in it; an exercise appears at most once
# per round, so each score belongs to exactly one bug. Bodies are self-contained (jax.nn, not the
# file's other exercises), so a bug is never caught through another function.
PLANTED = [
    (1, "token_log_probs", "log(softmax(z))", '''
def token_log_probs(logits, targets):
    p = jax.nn.softmax(logits.astype(jnp.promote_types(logits.dtype, jnp.float32)), axis=-1)
    return jnp.log(jnp.take_along_axis(p, targets[..., None], axis=-1)[..., 0])
'''),
    (2, "token_log_probs", "bf16 logits scored in bf16 (no float32 promotion)", '''
def token_log_probs(logits, targets):
    log_p = jax.nn.log_softmax(logits, axis=-1)
    return jnp.take_along_axis(log_p, targets[..., None], axis=-1)[..., 0]
'''),
    (1, "sequence_log_prob", "padding summed too (no mask)", '''
def sequence_log_prob(logits, targets, mask):
    log_p = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    return jnp.sum(jnp.take_along_axis(log_p, targets[..., None], axis=-1)[..., 0], axis=-1)
'''),
    (1, "sft_loss", "prompt tokens left in the loss (a bare mean)", '''
def sft_loss(logits, targets, loss_mask, reduction="token"):
    log_p = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    return -jnp.mean(jnp.take_along_axis(log_p, targets[..., None], axis=-1)[..., 0])
'''),
    (2, "sft_loss", "log(softmax(z)) inside the loss itself", '''
def sft_loss(logits, targets, loss_mask, reduction="token"):
    p = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)
    nll = -loss_mask * jnp.log(jnp.take_along_axis(p, targets[..., None], axis=-1)[..., 0])
    if reduction == "token":
        return safe_divide(jnp.sum(nll), jnp.sum(loss_mask))
    rows = jnp.sum(loss_mask, axis=-1)
    return safe_divide(jnp.sum(safe_divide(jnp.sum(nll, axis=-1), rows)), jnp.sum(rows > 0))
'''),
    (3, "sft_loss", "per-sequence mean divided by B, empty rows included", '''
def sft_loss(logits, targets, loss_mask, reduction="token"):
    log_p = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    nll = -loss_mask * jnp.take_along_axis(log_p, targets[..., None], axis=-1)[..., 0]
    if reduction == "token":
        return safe_divide(jnp.sum(nll), jnp.sum(loss_mask))
    return jnp.mean(safe_divide(jnp.sum(nll, axis=-1), jnp.sum(loss_mask, axis=-1)))
'''),
    (4, "sft_loss", "0/0 on an all-masked batch (plain division; the where trap per row)", '''
def sft_loss(logits, targets, loss_mask, reduction="token"):
    log_p = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    nll = -loss_mask * jnp.take_along_axis(log_p, targets[..., None], axis=-1)[..., 0]
    if reduction == "token":
        return jnp.sum(nll) / jnp.sum(loss_mask)
    rows = jnp.sum(loss_mask, axis=-1)
    per_row = jnp.where(rows > 0, jnp.sum(nll, axis=-1) / rows, 0.0)
    n = jnp.sum(rows > 0)
    return jnp.where(n > 0, jnp.sum(per_row) / n, 0.0)
'''),
    (1, "gradient_descent", "the gradient added, not subtracted", '''
def gradient_descent(params, grads, learning_rate):
    return jax.tree.map(lambda theta, g: theta + learning_rate * g, params, grads)
'''),
    (1, "adamw_update", "no bias correction of v", '''
def adamw_update(params, grads, state, learning_rate, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0):
    k = state.step + 1
    m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, state.m, grads)
    v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g**2, state.v, grads)
    new = jax.tree.map(lambda th, m, v: th - learning_rate * (m / (1 - b1**k) / (jnp.sqrt(v) + eps) + weight_decay * th),
                       params, m, v)
    return new, AdamWState(step=k, m=m, v=v)
'''),
    (2, "adamw_update", "L2 decay added to the gradient instead of decoupled", '''
def adamw_update(params, grads, state, learning_rate, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0):
    k = state.step + 1
    grads = jax.tree.map(lambda g, th: g + weight_decay * th, grads, params)
    m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, state.m, grads)
    v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g**2, state.v, grads)
    new = jax.tree.map(lambda th, m, v: th - learning_rate * (m / (1 - b1**k)) / (jnp.sqrt(v / (1 - b2**k)) + eps),
                       params, m, v)
    return new, AdamWState(step=k, m=m, v=v)
'''),
    (3, "adamw_update", "eps inside the square root", '''
def adamw_update(params, grads, state, learning_rate, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0):
    k = state.step + 1
    m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, state.m, grads)
    v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g**2, state.v, grads)
    new = jax.tree.map(lambda th, m, v: th - learning_rate * (m / (1 - b1**k) / jnp.sqrt(v / (1 - b2**k) + eps)
                                                            + weight_decay * th), params, m, v)
    return new, AdamWState(step=k, m=m, v=v)
'''),
    (1, "bradley_terry_loss", "-log(sigmoid(m)) written literally", '''
def bradley_terry_loss(r_chosen, r_rejected):
    return -jnp.mean(jnp.log(jax.nn.sigmoid(r_chosen - r_rejected)))
'''),
    (1, "kl_estimate", "k2 without its 1/2", '''
def kl_estimate(logp, logp_ref, kind="k1"):
    log_r = logp_ref - logp
    return {"k1": -log_r, "k2": log_r**2, "k3": jnp.expm1(log_r) - log_r}[kind]
'''),
    (2, "kl_estimate", "k2 as |log r|", '''
def kl_estimate(logp, logp_ref, kind="k1"):
    log_r = logp_ref - logp
    return {"k1": -log_r, "k2": jnp.abs(log_r), "k3": jnp.expm1(log_r) - log_r}[kind]
'''),
    (3, "kl_estimate", "k1 with the wrong sign (log r for -log r)", '''
def kl_estimate(logp, logp_ref, kind="k1"):
    log_r = logp_ref - logp
    return {"k1": log_r, "k2": 0.5 * log_r**2, "k3": jnp.expm1(log_r) - log_r}[kind]
'''),
    (4, "kl_estimate", "k3 with r the wrong way round (pi_theta / pi_ref)", '''
def kl_estimate(logp, logp_ref, kind="k1"):
    log_r = logp_ref - logp
    return {"k1": -log_r, "k2": 0.5 * log_r**2, "k3": jnp.expm1(-log_r) + log_r}[kind]
'''),
    (1, "per_token_rewards", "the score put on the last column, not the last real token", '''
def per_token_rewards(score, kl, mask, beta):
    check_beta(beta, "per_token_rewards")
    kl, score = jax.lax.stop_gradient(kl), jax.lax.stop_gradient(score)
    rewards = jnp.where(mask > 0, -beta * kl, 0.0)
    return rewards.at[:, -1].add(score)
'''),
    (2, "per_token_rewards", "no stop-gradient on the reward model's score", '''
def per_token_rewards(score, kl, mask, beta):
    check_beta(beta, "per_token_rewards")
    kl = jax.lax.stop_gradient(kl)
    after = jnp.flip(jnp.cumsum(jnp.flip(mask, axis=1), axis=1), axis=1) - mask
    is_last = jnp.where((mask > 0) & (after == 0), 1.0, 0.0)
    return jnp.where(mask > 0, -beta * kl, 0.0) + is_last * score[:, None]
'''),
    (1, "gae", "bootstrapping from the value of a padding position", '''
def gae(rewards, values, mask, gamma=1.0, lam=0.95):
    rewards, values, mask = (jax.lax.stop_gradient(a) for a in (rewards, values, mask))
    next_values = jnp.concatenate([values[:, 1:], jnp.zeros_like(values[:, :1])], axis=1)
    deltas = rewards + gamma * next_values - values
    def step(next_adv, xs):
        d, m = xs
        adv = m * (d + gamma * lam * next_adv)
        return adv, adv
    _, adv = jax.lax.scan(step, jnp.zeros_like(deltas[:, 0]), (deltas.T, mask.T), reverse=True)
    return adv.T, jnp.where(mask > 0, adv.T + values, 0.0)
'''),
    (2, "gae", "padding positions left with advantages (no mask on the recursion)", '''
def gae(rewards, values, mask, gamma=1.0, lam=0.95):
    rewards, values, mask = (jax.lax.stop_gradient(a) for a in (rewards, values, mask))
    next_mask = jnp.concatenate([mask[:, 1:], jnp.zeros_like(mask[:, :1])], axis=1)
    next_values = jnp.concatenate([values[:, 1:], jnp.zeros_like(values[:, :1])], axis=1)
    deltas = rewards + gamma * next_mask * next_values - values
    def step(next_adv, xs):
        d, nm = xs
        adv = d + gamma * lam * nm * next_adv
        return adv, adv
    _, adv = jax.lax.scan(step, jnp.zeros_like(deltas[:, 0]), (deltas.T, next_mask.T), reverse=True)
    return adv.T, jnp.where(mask > 0, adv.T + values, 0.0)
'''),
    (1, "ppo_clip_loss", "max instead of min", '''
def ppo_clip_loss(logp_new, logp_old, advantages, mask, clip_eps=0.2):
    logp_old, advantages = jax.lax.stop_gradient(logp_old), jax.lax.stop_gradient(advantages)
    ratio = jnp.exp(logp_new - logp_old)
    clipped = jnp.clip(ratio, 1 - clip_eps, 1 + clip_eps)
    return -masked_mean(jnp.maximum(ratio * advantages, clipped * advantages), mask)
'''),
    (2, "ppo_clip_loss", "no stop-gradient on the advantages", '''
def ppo_clip_loss(logp_new, logp_old, advantages, mask, clip_eps=0.2):
    logp_old = jax.lax.stop_gradient(logp_old)
    ratio = jnp.exp(logp_new - logp_old)
    clipped = jnp.clip(ratio, 1 - clip_eps, 1 + clip_eps)
    return -masked_mean(jnp.minimum(ratio * advantages, clipped * advantages), mask)
'''),
    (3, "ppo_clip_loss", "a mean over the padding too", '''
def ppo_clip_loss(logp_new, logp_old, advantages, mask, clip_eps=0.2):
    logp_old, advantages = jax.lax.stop_gradient(logp_old), jax.lax.stop_gradient(advantages)
    ratio = jnp.exp(logp_new - logp_old)
    clipped = jnp.clip(ratio, 1 - clip_eps, 1 + clip_eps)
    return -jnp.mean(mask * jnp.minimum(ratio * advantages, clipped * advantages))
'''),
    (4, "ppo_clip_loss", "the ratio the wrong way round (pi_old / pi_theta)", '''
def ppo_clip_loss(logp_new, logp_old, advantages, mask, clip_eps=0.2):
    logp_old, advantages = jax.lax.stop_gradient(logp_old), jax.lax.stop_gradient(advantages)
    ratio = jnp.exp(logp_old - logp_new)
    clipped = jnp.clip(ratio, 1 - clip_eps, 1 + clip_eps)
    return -masked_mean(jnp.minimum(ratio * advantages, clipped * advantages), mask)
'''),
    (1, "ppo_diagnostics", "the ratio the wrong way round", '''
def ppo_diagnostics(logp_new, logp_old, advantages, mask, clip_eps=0.2):
    ratio = jnp.exp(logp_old - logp_new)
    clipped, unclipped = jnp.clip(ratio, 1 - clip_eps, 1 + clip_eps) * advantages, ratio * advantages
    return PPOStats(masked_mean((clipped < unclipped).astype(ratio.dtype), mask),
                    masked_mean((ratio - 1) - jnp.log(ratio), mask), masked_mean(ratio, mask))
'''),
    (2, "ppo_diagnostics", "fractions and means over the padding too", '''
def ppo_diagnostics(logp_new, logp_old, advantages, mask, clip_eps=0.2):
    ratio = jnp.exp(logp_new - logp_old)
    clipped, unclipped = jnp.clip(ratio, 1 - clip_eps, 1 + clip_eps) * advantages, ratio * advantages
    log_ratio = logp_new - logp_old
    return PPOStats(jnp.mean(clipped < unclipped), jnp.mean((ratio - 1) - log_ratio), jnp.mean(ratio))
'''),
    (1, "expected_calibration_error", "an unweighted mean over the non-empty bins", '''
def expected_calibration_error(confidence, correct, n_bins=10):
    gaps = [abs(b.accuracy - b.confidence) for b in reliability_bins(confidence, correct, n_bins) if b.count]
    return float(np.mean(gaps)) if gaps else 0.0
'''),
    (2, "expected_calibration_error", "the empty bins counted in the mean", '''
def expected_calibration_error(confidence, correct, n_bins=10):
    bins = reliability_bins(confidence, correct, n_bins)
    return float(np.mean([abs(b.accuracy - b.confidence) for b in bins])) if len(confidence) else 0.0
'''),
]

# Right answers written differently from minift's: each must score 100%.
ACCEPTED = [
    (3, "ppo_diagnostics", "CleanRL's definitions: clip fraction |ratio - 1| > eps, k3 approx_kl", '''
def ppo_diagnostics(logp_new, logp_old, advantages, mask, clip_eps=0.2):
    log_ratio = jax.lax.stop_gradient(logp_new - logp_old)
    ratio = jnp.exp(log_ratio)
    return PPOStats(masked_mean((jnp.abs(ratio - 1.0) > clip_eps).astype(ratio.dtype), mask),
                    masked_mean((ratio - 1) - log_ratio, mask), masked_mean(ratio, mask))
'''),
    (4, "ppo_diagnostics", "TRL's definitions: the clip chosen by the min, k2 approxkl", '''
def ppo_diagnostics(logp_new, logp_old, advantages, mask, clip_eps=0.2):
    log_ratio = jax.lax.stop_gradient(logp_new - logp_old)
    ratio = jnp.exp(log_ratio)
    losses, clipped = -advantages * ratio, -advantages * jnp.clip(ratio, 1 - clip_eps, 1 + clip_eps)
    return PPOStats(masked_mean((clipped > losses).astype(ratio.dtype), mask),
                    0.5 * masked_mean(log_ratio**2, mask), masked_mean(ratio, mask))
'''),
    (3, "expected_calibration_error", "written from scratch with numpy, no helper", '''
def expected_calibration_error(confidence, correct, n_bins=10):
    conf, hit = np.asarray(confidence, float), np.asarray(correct, float)
    if conf.size == 0:
        return 0.0
    index = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    return float(sum(np.sum(index == b) / conf.size * abs(hit[index == b].mean() - conf[index == b].mean())
                     for b in range(n_bins) if np.any(index == b)))
'''),
]
# A round where the optim file imports optax: its right bodies pass every check and still score 0.
OPTAX_ROUND = 4

EXERCISE_OF = {ex.name: ex for ex in E.EXERCISES}


def write_round(root, round_):
    """The student folder of one round: the answer key with the round's functions planted over it;
    in STUB_ROUND, untouched stubs instead of the answer key, so every other function is unwritten."""
    folder = root / f"round{round_}"
    for module in MODULES:
        source = E.stub_source(module, solutions=round_ != STUB_ROUND)
        for r, name, _, body in PLANTED + ACCEPTED:
            if r == round_ and EXERCISE_OF[name].module == module:
                source += "\n" + body  # a later def replaces the earlier one
        if round_ == OPTAX_ROUND and module == "minift.optim":
            source += "\nimport optax  # noqa: E402,F401  (the loophole: the bodies above are right)\n"
        E.student_file(folder, module).parent.mkdir(parents=True, exist_ok=True)
        E.student_file(folder, module).write_text(source, encoding="utf-8")
    return folder


STUB_ROUND = 3
ROUNDS = sorted({r for r, *_ in PLANTED})


@pytest.mark.slow
def test_grader_gives_the_answer_key_100_and_every_planted_bug_0(tmp_path):
    """Five grading runs: minift's own bodies (the answer key) score 100% on every function; then
    the 27 classic bugs above, a few per run, each score 0 for its function; the accepted variants
    score 100%; untouched stubs score 0 as "not written yet"; right bodies in a file that imports
    optax score 0."""
    assert len(PLANTED) >= 12 and {name for _, name, *_ in PLANTED} == set(EXERCISE_OF)  # every function
    key = tmp_path / "key"
    for module in MODULES:
        E.student_file(key, module).parent.mkdir(parents=True, exist_ok=True)
        E.student_file(key, module).write_text(E.stub_source(module, solutions=True), encoding="utf-8")
    for score in G.grade(key):
        assert score.complete and score.fraction == 1.0, (score.exercise.name, score.first_failure, score.refused)
        assert score.total >= len(score.exercise.tests)

    for round_ in ROUNDS:
        planted = {name: what for r, name, what, _ in PLANTED if r == round_}
        accepted = {name: what for r, name, what, _ in ACCEPTED if r == round_}
        optax_in = ["gradient_descent", "adamw_update"] if round_ == OPTAX_ROUND else []
        names = set(planted) | set(accepted) | set(optax_in) | (set(EXERCISE_OF) if round_ == STUB_ROUND else set())
        assert not set(planted) & set(accepted) & set(optax_in)  # one thing per function per round
        scores = {s.exercise.name: s for s in G.grade(write_round(tmp_path, round_), tuple(sorted(names)))}
        for name, what in planted.items():
            s = scores[name]
            assert s.fraction == 0.0 and s.passed < s.total, f"{name} with the bug '{what}' scored {s.passed}/{s.total}"
            assert s.first_failure and " / " in s.first_failure  # which check, in English and Vietnamese
        for name, what in accepted.items():
            s = scores[name]
            assert s.complete, f"{name} written as {what} is right but scored {s.passed}/{s.total}: {s.first_failure}"
        for name in optax_in:
            s = scores[name]
            assert s.passed == s.total and s.fraction == 0.0 and "imports optax" in s.refused, s
        for name in names - set(planted) - set(accepted) - set(optax_in):  # STUB_ROUND: the untouched stubs
            s = scores[name]
            assert s.passed == 0 and s.fraction == 0.0 and s.first_failure.startswith("not written yet"), (name, s)


def test_a_file_that_imports_the_work_is_refused(tmp_path):
    """refusals() reads the student's source: optax, a whole minift module, a hidden helper, minift's
    own version of the exercise, or an exercise that is not a function of the file void its grade."""
    E.write_stubs(tmp_path)
    for module in MODULES:  # the stubs and the answer key play by the rules
        assert G.refusals(tmp_path, module) == {}, module
        key = tmp_path / "key"
        E.student_file(key, module).parent.mkdir(exist_ok=True)
        E.student_file(key, module).write_text(E.stub_source(module, solutions=True), encoding="utf-8")
        assert G.refusals(key, module) == {}, module
    loss_file = E.student_file(tmp_path, "minift.loss")
    stub = loss_file.read_text(encoding="utf-8")
    cases = {
        "import optax\n": ({"token_log_probs", "sequence_log_prob", "sft_loss"}, "imports optax"),
        "from optax import losses\n": ({"token_log_probs", "sequence_log_prob", "sft_loss"}, "imports from optax"),
        "import minift.loss as L\n": ({"token_log_probs", "sequence_log_prob", "sft_loss"}, "whole module"),
        "from minift import loss\n": ({"token_log_probs", "sequence_log_prob", "sft_loss"}, "as a whole"),
        "from minift.loss import nll_sum_and_count\n": ({"token_log_probs", "sequence_log_prob", "sft_loss"},
                                                        "leaves out on purpose"),
        "from minift.loss import sft_loss as theirs\n": ({"sft_loss"}, "imports minift's own sft_loss"),
        "import importlib\n": ({"token_log_probs", "sequence_log_prob", "sft_loss"}, "imports importlib"),
    }
    for line, (refused, why) in cases.items():
        loss_file.write_text(stub + "\n" + line, encoding="utf-8")
        found = G.refusals(tmp_path, "minift.loss")
        assert set(found) == refused and all(why in found[n] and "dòng" in found[n] for n in refused), (line, found)
    # An exercise that is not a function of the file (bound to something else) is refused too.
    loss_file.write_text(stub.replace("def sequence_log_prob(", "def _renamed(") + "\nsequence_log_prob = len\n",
                         encoding="utf-8")
    assert set(G.refusals(tmp_path, "minift.loss")) == {"sequence_log_prob"}
    # A score is all or nothing, and a refused file scores 0 even when every check passed.
    ex = EXERCISE_OF["sft_loss"]
    assert G.Score(ex, 11, 11, "").fraction == 1.0 and G.Score(ex, 10, 11, "x").fraction == 0.0
    assert G.Score(ex, 11, 11, "", refused="imports optax").fraction == 0.0 and G.Score(ex, 0, 0, "").fraction == 0.0


def test_stubs_leave_out_the_helpers_that_would_do_the_work_and_say_so(stubs):
    for module in MODULES:
        text = E.student_file(stubs, module).read_text(encoding="utf-8")
        assert "import optax" not in text  # AdamW is not one call away
        for name in E.HIDDEN.get(module, ()):
            student = E.load_student_module(stubs, module)
            assert not hasattr(student, name), f"{module}'s stub gives the student {name}"
            assert f"Left out on purpose, because they would do an exercise's work: " in text and name in text
            assert "Cố ý không nhập" in text
    # The answer key writes out the hidden helper its bodies call (the ECE's binning, sft_loss's sums).
    assert "def reliability_bins(" in E.stub_source("minift.calibration", solutions=True)
    assert "def nll_sum_and_count(" in E.stub_source("minift.loss", solutions=True)
    assert "def make_optimizer(" not in E.stub_source("minift.optim", solutions=True)  # called by no exercise


def test_every_graded_check_has_its_vietnamese_sentence():
    graded = {t.split("::")[1] for ex in E.EXERCISES for t in ex.tests}
    assert graded == set(G.CHECKS_VI), (sorted(graded - set(G.CHECKS_VI)), sorted(set(G.CHECKS_VI) - graded))
    assert G.in_vietnamese("tests/test_loss.py::test_stable_at_huge_logits[token]").endswith("(token)")


def test_in_words():
    assert G.in_words("tests/test_loss.py::test_prompt_positions_get_exactly_zero_gradient[token]") == (
        "prompt positions get exactly zero gradient (token)")


def test_the_exercises_command_writes_the_answer_key_on_request(tmp_path, capsys):
    from minift.commands import exercises as command

    parser = __import__("argparse").ArgumentParser()
    command.add_arguments(parser)
    assert command.run(parser.parse_args(["--out", str(tmp_path / "key"), "--solutions"])) == 0
    assert command.run(parser.parse_args(["--out", str(tmp_path / "stubs")])) == 0
    for module in dict.fromkeys(ex.module for ex in E.EXERCISES):
        key, stub = E.student_file(tmp_path / "key", module), E.student_file(tmp_path / "stubs", module)
        assert key.read_text() == E.stub_source(module, solutions=True) and "NotImplementedError" not in key.read_text()
        assert stub.read_text() == E.stub_source(module)
    assert "answer key" in capsys.readouterr().out


def test_the_vietnamese_answer_key_scores_100_under_the_students_rules(tmp_path):
    """docs/answer_key.vi.md's worked bodies, put into the students' files (their imports only: no
    optax, no hidden helper), are graded like a student's work: every function complete."""
    import re

    page = (E.REPO / "docs" / "answer_key.vi.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", page, re.M | re.S)
    by_name = {re.match(r"def (\w+)\(", b).group(1): b for b in blocks}
    assert sorted(by_name) == sorted(ex.name for ex in E.EXERCISES) and len(blocks) == len(E.EXERCISES)
    for module in dict.fromkeys(ex.module for ex in E.EXERCISES):
        stub = E.stub_source(module)
        header = stub[: stub.index("\ndef ")]
        bodies = "\n\n".join(by_name[ex.name] for ex in E.EXERCISES if ex.module == module)
        path = E.student_file(tmp_path, module)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(header + "\n\n" + bodies, encoding="utf-8")
    scores = G.grade(tmp_path)
    assert [s.exercise.name for s in scores if not s.complete] == [], [(s.exercise.name, s.first_failure, s.refused)
                                                                       for s in scores if not s.complete]
