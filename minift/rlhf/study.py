r"""The §4 study: PPO, DPO, GRPO and best-of-n against one gold judge, on one KL axis.

Gao et al. (2023) measured reward over-optimisation by optimising a *proxy* reward model and
scoring with a *gold* one: as the policy moves away from its start (distance $d=\sqrt{KL}$),
the gold reward first rises and then falls while the proxy keeps rising. This study does the
same at course scale, in the setting of ``minift.rlhf.setting`` (a weak SFT policy, annotators
biased towards a polite opening):

1. **setting** (fixed, seed 0): SFT from the course's pretrained model on the demonstrations;
   two samples of the SFT policy per question plus written candidates, labelled by the biased
   annotators; a Bradley–Terry reward model fitted to the labels;
2. per seed: **PPO** (KL k1 in the reward) for each β, **GRPO** (k3 in the loss) for each β,
   **DPO** from the same pairs for each of its β, and **best-of-n** from the SFT policy for
   $n = 1\ldots64$ ($KL = \log n - (n-1)/n$, no training);
3. for every final policy, **mode collapse** on a fixed prompt set (distinct answers per prompt
   among 8 samples, next-token entropy at temperature 1, and how many of them open politely — the
   annotators' bias, exploited);
4. the figure (gold and proxy against $\sqrt{KL}$, seed bands) and Gao's forms fitted to each
   method's gold gain.

``rlhf_results.json`` holds ``curves[method][setting][seed] = [{"kl", "proxy", "gold"}, ...]`` in
training order (best-of-n: one point), ``collapse[method][setting][seed] = {"distinct",
"entropy", "polite"}``, the setting's own numbers, the fits and samples before/after.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import jax
import numpy as np

from minift import data, loop
from minift.config import ModelConfig
from minift.course.bundled import course_examples, named_task_examples
from minift.course.judge import judge
from minift.files import write_json
from minift.rlhf import measure, setting
from minift.rlhf.dpo import DPOConfig, encode_pair_tokens, train_dpo
from minift.rlhf.estimators import best_of_n_expectation, best_of_n_kl, gao_fit
from minift.rlhf.grpo import GRPOConfig, train_grpo
from minift.rlhf.ppo import PPOConfig, make_prompt_set, train_ppo
from minift.rlhf.reward_model import (
    RMConfig,
    encode_pairs,
    evaluate_reward_model,
    init_reward_model,
    train_reward_model,
)
from minift.rlhf.study_figure import plot_study

METHODS = ("ppo", "grpo", "dpo", "bon")


@dataclass(frozen=True)
class StudyConfig:
    """Every knob of the study (stored in ``rlhf_results.json``); ``quick()`` is the test-sized one."""

    sft_steps: int = 700  # short on purpose: the policy must start well below the gold ceiling
    polite_fraction: float = 0.05  # of the demonstrations: rare, so the exploit has to be found
    rambling_fraction: float = 0.2
    annotator: setting.Annotator = field(default_factory=setting.Annotator)
    policy_pairs: int = 1500  # questions whose two SFT samples are labelled
    written_pairs: int = 1000  # pairs of written candidates
    rm_steps: int = 250
    max_new_tokens: int = 16
    ppo_betas: tuple[float, ...] = (0.0, 0.05, 0.2, 0.5)
    ppo_iterations: int = 40
    ppo_learning_rate: float = 2e-4
    grpo_betas: tuple[float, ...] = (0.0, 0.2)
    grpo_iterations: int = 30
    dpo_betas: tuple[float, ...] = (0.05, 0.2, 1.0)
    dpo_steps: int = 150
    bon_n: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    eval_prompts: int = 64  # the fixed prompt set DPO and best-of-n are measured on
    collapse_prompts: int = 16
    collapse_samples: int = 8

    def __post_init__(self):
        for name in ("ppo_betas", "grpo_betas"):
            if any(b < 0 for b in getattr(self, name)):
                raise ValueError(f"StudyConfig: every value of {name} must be >= 0 (0 = no KL penalty), "
                                 f"got {getattr(self, name)}.")
        if any(not b > 0 for b in self.dpo_betas):
            raise ValueError(f"StudyConfig: every DPO beta must be > 0, got {self.dpo_betas}.")
        if any(n < 1 for n in self.bon_n) or max(self.bon_n) < 1:
            raise ValueError(f"StudyConfig: every best-of-n n must be >= 1, got {self.bon_n}.")

    @classmethod
    def quick(cls) -> "StudyConfig":
        """Seconds, not minutes: every method and output, numbers without meaning (tests, notebooks' small setting)."""
        return cls(sft_steps=30, policy_pairs=64, written_pairs=64, rm_steps=10, max_new_tokens=8,
                   ppo_betas=(0.0, 0.5), ppo_iterations=2, grpo_betas=(0.1,), grpo_iterations=2,
                   dpo_betas=(0.1,), dpo_steps=4, bon_n=(1, 2, 4), eval_prompts=16, collapse_prompts=4,
                   collapse_samples=4)


class Setting:
    """What every method starts from: SFT policy (= $\\pi_{ref}$), reward model, pairs, prompt sets."""

    def __init__(self, sft_params, config, rm_params, pairs, pair_tokens, train_prompts, eval_prompts, info):
        self.sft_params, self.config, self.rm_params = sft_params, config, rm_params
        self.pairs, self.pair_tokens = pairs, pair_tokens
        self.train_prompts, self.eval_prompts, self.info = train_prompts, eval_prompts, info


def build_setting(base_params: dict, config: ModelConfig, tokenizer: Any, study: StudyConfig, work: Path,
                  log: Callable[[str], None] = print, pairs: Sequence | None = None) -> Setting:
    """Step 1 of the module doc: SFT, the annotated pairs, the reward model (all seed 0).

    ``pairs`` (e.g. ``minift.preferences.load_preferences``) replace the biased annotators' pairs."""
    t0 = time.perf_counter()
    template = data.COURSE_TEMPLATE
    train = named_task_examples()
    demos = setting.demonstrations(train, study.polite_fraction, study.rambling_fraction)
    encoded, _ = data.encode_dataset(demos, tokenizer, 96, template=template)
    sft = loop.fit(work / "sft", config, base_params,
                   lambda e: data.batches(encoded, 16, buckets=(48, 64, 96), pad_id=tokenizer.pad_id, seed=(1, e)),
                   loop.TrainConfig(steps=study.sft_steps, batch_size=16, learning_rate=3e-3,
                                    warmup_steps=min(30, study.sft_steps // 2), eval_every=0, checkpoint_every=0),
                   progress=False, info={"template": template})
    sft_params = sft.params
    log(f"setting: SFT {study.sft_steps} steps, loss {sft.history[-1]['loss']:.3f} ({time.perf_counter() - t0:.0f} s)")
    rng = random.Random(0)
    questions = rng.sample(train, min(study.policy_pairs, len(train)))
    question_set = make_prompt_set(questions, tokenizer, template)
    idx = np.arange(len(questions))
    a = measure.sample(sft_params, config, question_set, idx, jax.random.PRNGKey(101), tokenizer, study.max_new_tokens)
    b = measure.sample(sft_params, config, question_set, idx, jax.random.PRNGKey(102), tokenizer, study.max_new_tokens)
    if pairs is None:
        pairs = (setting.annotate(questions, a.text, b.text, study.annotator, template)
                 + setting.annotated_pairs(study.written_pairs, study.annotator, template))
    pairs = list(pairs)
    if len(pairs) < 2:
        raise ValueError(f"the study needs at least 2 preference pairs (one to fit, one to check), got {len(pairs)}.")
    random.Random(1).shuffle(pairs)
    n_eval = max(1, len(pairs) // 10)
    rm_cfg = RMConfig(steps=study.rm_steps, batch_size=min(32, len(pairs) - n_eval),
                      warmup_steps=min(10, study.rm_steps // 2))
    train_pairs, _ = encode_pairs(pairs[n_eval:], tokenizer, 96)
    eval_pairs, _ = encode_pairs(pairs[:n_eval], tokenizer, 96)
    rm_params, _ = train_reward_model(init_reward_model(sft_params, config), config, train_pairs, rm_cfg)
    rm_eval = evaluate_reward_model(rm_params, eval_pairs, config)
    # fresh questions for the methods: PPO/GRPO draw from one set, DPO/best-of-n are measured on another
    pool = [e for e in train if e not in set(questions)] or train
    rng.shuffle(pool)
    eval_prompts = make_prompt_set(pool[: study.eval_prompts], tokenizer, template)
    train_prompts = make_prompt_set(pool[study.eval_prompts :][:2000] or pool, tokenizer, template)
    # how good a proxy is it on the policy's own answers? pairwise agreement with the judge
    x = measure.sample(sft_params, config, eval_prompts, np.repeat(np.arange(len(eval_prompts.inputs)), 4),
                       jax.random.PRNGKey(103), tokenizer, study.max_new_tokens)
    _, proxy = measure.score(sft_params, sft_params, rm_params, config, x)
    gold = measure.gold(eval_prompts, x)
    info = {"rm_heldout_accuracy": rm_eval["accuracy"], "pairs": len(pairs),
            "pairs_judge_agreement": float(np.mean([_judge_agrees(p) for p in pairs if p.instruction])) if any(
                p.instruction for p in pairs) else None,
            "rm_gold_correlation_on_sft_samples": float(np.corrcoef(proxy, gold)[0, 1]) if np.std(gold) > 0 else None,
            "sft_gold": float(gold.mean()), "sft_proxy": float(proxy.mean()),
            "sft_polite": float(np.mean([setting.opens_politely(t) for t in x.text])),
            "seconds": time.perf_counter() - t0}
    log(f"setting: {len(pairs)} pairs, reward model held-out accuracy {rm_eval['accuracy']:.2f}; SFT policy: gold "
        f"{info['sft_gold']:.2f}, proxy {info['sft_proxy']:.2f} ({info['seconds']:.0f} s)")
    return Setting(sft_params, config, rm_params, pairs, encode_pair_tokens(pairs, tokenizer, 96), train_prompts,
                   eval_prompts, info)


def _judge_agrees(p) -> float:
    """1 if the judge also prefers the chosen answer, 0 if it prefers the rejected one, ½ on a tie."""
    c, r = (judge(p.instruction, p.input, y, task=p.task) for y in (p.chosen, p.rejected))
    return 1.0 if c > r else 0.0 if c < r else 0.5


def bon_points(s: Setting, tokenizer: Any, study: StudyConfig, seed: int) -> tuple[dict, dict]:
    """Best-of-n from the SFT policy: {n: point} and {n: collapse}; N = max(bon_n) samples per eval prompt."""
    N = max(study.bon_n)
    P = len(s.eval_prompts.inputs)
    x = measure.sample(s.sft_params, s.config, s.eval_prompts, np.repeat(np.arange(P), N),
                       jax.random.PRNGKey(1000 + seed), tokenizer, study.max_new_tokens)
    kl_unused, proxy = measure.score(s.sft_params, s.sft_params, s.rm_params, s.config, x)
    gold = measure.gold(s.eval_prompts, x)
    proxy, gold = proxy.reshape(P, N), gold.reshape(P, N)
    texts = np.asarray(x.text, dtype=object).reshape(P, N)
    rng = np.random.default_rng(seed)
    points, collapse = {}, {}
    for n in study.bon_n:
        points[str(n)] = [{"kl": best_of_n_kl(n),
                           "proxy": float(np.mean([best_of_n_expectation(proxy[p], proxy[p], n) for p in range(P)])),
                           "gold": float(np.mean([best_of_n_expectation(proxy[p], gold[p], n) for p in range(P)]))}]
        # collapse: m independent best-of-n draws per prompt (subsets of the N samples)
        m, picks, rows = study.collapse_samples, [], []
        for p in range(study.collapse_prompts):
            for _ in range(m):
                sub = rng.choice(N, size=n, replace=False)
                best = sub[np.argmax(proxy[p, sub])]
                picks.append(texts[p, best])
                rows.append(p * N + best)
        chosen = measure.Samples(*(a[rows] for a in x[:5]), picks)
        collapse[str(n)] = {"distinct": measure.distinct_per_prompt(picks, m),
                            # best-of-n has no network of its own: the SFT model's entropy along its picks
                            "entropy": measure.token_entropy(s.sft_params, s.config, chosen),
                            "polite": float(np.mean([setting.opens_politely(t) for t in picks]))}
    return points, collapse


def run_study(base_params: dict, config: ModelConfig, tokenizer: Any, out_dir: str | Path, seeds: Sequence[int],
              study: StudyConfig = StudyConfig(), methods: Sequence[str] = METHODS,
              log: Callable[[str], None] = print, progress: Callable[[int], Any] | None = None,
              pairs: Sequence | None = None) -> dict:
    """The whole study (module doc); writes ``out_dir/rlhf_results.json`` and ``out_dir/rlhf.png``."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"--methods: unknown {unknown}; choose from {', '.join(METHODS)}.")
    if not seeds:
        raise ValueError("--seeds must be >= 1.")
    out_dir = Path(out_dir)
    t0 = time.perf_counter()
    s = build_setting(base_params, config, tokenizer, study, out_dir / "work", log, pairs)
    curves: dict = {m: {} for m in methods}
    collapse: dict = {m: {} for m in methods}
    samples: dict = {}
    n_runs = len(seeds) * (len(study.ppo_betas) * ("ppo" in methods) + len(study.grpo_betas) * ("grpo" in methods)
                           + len(study.dpo_betas) * ("dpo" in methods) + ("bon" in methods))
    bar = progress(n_runs) if progress else None

    def final(method: str, name: str, seed: int, params: dict) -> None:
        collapse[method].setdefault(name, {})[str(seed)] = measure.collapse(
            params, config, s.eval_prompts, study.collapse_prompts, study.collapse_samples,
            jax.random.PRNGKey(2000 + seed), tokenizer, study.max_new_tokens)
        if bar is not None:
            bar.update(1)

    for seed in seeds:
        if "ppo" in methods:
            for beta in study.ppo_betas:
                name = f"{beta:g}"
                ppo_cfg = PPOConfig(iterations=study.ppo_iterations, beta=beta, learning_rate=study.ppo_learning_rate,
                                    seed=seed, max_new_tokens=study.max_new_tokens,
                                    batch_size=32 if len(s.train_prompts.inputs) >= 32 else 8)
                state, h = train_ppo(s.sft_params, config, s.rm_params, config, s.train_prompts, tokenizer, ppo_cfg)
                curves["ppo"].setdefault(name, {})[str(seed)] = [
                    {"kl": r["kl_k1"], "proxy": r["reward"], "gold": r["gold_reward"]} for r in h]
                samples.setdefault("ppo", {}).setdefault(name, {})[str(seed)] = {"first": h[0]["sample"],
                                                                                  "last": h[-1]["sample"]}
                final("ppo", name, seed, state.params["policy"])
                log(f"seed {seed} ppo beta {name}: proxy {h[0]['reward']:+.2f} -> {h[-1]['reward']:+.2f}, gold "
                    f"{h[0]['gold_reward']:+.2f} -> {h[-1]['gold_reward']:+.2f}, KL {h[-1]['kl_k1']:.2f}")
        if "grpo" in methods:
            for beta in study.grpo_betas:
                name = f"{beta:g}"
                g_cfg = GRPOConfig(iterations=study.grpo_iterations, beta=beta, seed=seed,
                                   max_new_tokens=study.max_new_tokens, learning_rate=study.ppo_learning_rate)
                params, h = train_grpo(s.sft_params, config, s.rm_params, s.train_prompts, tokenizer, g_cfg,
                                       gold=lambda x: measure.gold(s.train_prompts, x))
                curves["grpo"].setdefault(name, {})[str(seed)] = [{k: r[k] for k in ("kl", "proxy", "gold")} for r in h]
                samples.setdefault("grpo", {}).setdefault(name, {})[str(seed)] = {"first": h[0]["sample"],
                                                                                   "last": h[-1]["sample"]}
                final("grpo", name, seed, params)
                log(f"seed {seed} grpo beta {name}: proxy {h[0]['proxy']:+.2f} -> {h[-1]['proxy']:+.2f}, gold "
                    f"{h[0]['gold']:+.2f} -> {h[-1]['gold']:+.2f}, KL {h[-1]['kl']:.2f}")
        if "dpo" in methods:
            for beta in study.dpo_betas:
                name = f"{beta:g}"
                d_cfg = DPOConfig(steps=study.dpo_steps, beta=beta, seed=seed,
                                  batch_size=min(32, s.pair_tokens.chosen.shape[0]),
                                  measure_every=max(1, study.dpo_steps // 6))
                point = lambda p, step, seed=seed: measure.measure(  # noqa: E731
                    p, s.sft_params, s.rm_params, config, s.eval_prompts, jax.random.PRNGKey(3000 + 97 * seed + step),
                    tokenizer, study.max_new_tokens)
                params, h = train_dpo(s.sft_params, config, s.pair_tokens, d_cfg, on_measure=point)
                curves["dpo"].setdefault(name, {})[str(seed)] = [{k: r[k] for k in ("kl", "proxy", "gold")} for r in h]
                final("dpo", name, seed, params)
                log(f"seed {seed} dpo beta {name}: proxy {h[0]['proxy']:+.2f} -> {h[-1]['proxy']:+.2f}, gold "
                    f"{h[0]['gold']:+.2f} -> {h[-1]['gold']:+.2f}, KL {h[-1]['kl']:.2f}")
        if "bon" in methods:
            points, coll = bon_points(s, tokenizer, study, seed)
            for n in points:
                curves["bon"].setdefault(n, {})[str(seed)] = points[n]
                collapse["bon"].setdefault(n, {})[str(seed)] = coll[n]
            if bar is not None:
                bar.update(1)
            log(f"seed {seed} best-of-n: gold " + ", ".join(f"n={n} {p[0]['gold']:+.2f}" for n, p in points.items()))
    if bar is not None:
        bar.close()
    results = {"curves": curves, "collapse": collapse, "fits": fits(curves), "seeds": list(seeds),
               "setting": {**s.info, "study": _jsonable(asdict(study))}, "samples": samples,
               "model": config.to_dict(), "seconds": time.perf_counter() - t0}
    write_json(out_dir / "rlhf_results.json", results, indent=1)
    plot_study(results, out_dir / "rlhf.png")
    return results


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


def fits(curves: dict) -> dict:
    """Gao et al.'s forms fitted to each method's gold gain over its start against d = √KL, pooling
    every setting and seed: best-of-n R = d(α − βd), the trained methods R = d(α − β log d)."""
    out = {}
    for method, settings in curves.items():
        d, r = [], []
        for runs in settings.values():
            for points in runs.values():
                start = points[0]["gold"] if method != "bon" else None
                for p in points:
                    d.append(np.sqrt(max(p["kl"], 0.0)))
                    r.append(p["gold"] - (start if start is not None else 0.0))
        if method == "bon":  # the start is n = 1 (KL 0) of the same seed
            d, r = [], []
            for seed in next(iter(settings.values())):
                g1 = settings["1"][seed][0]["gold"] if "1" in settings else 0.0
                for n, runs in settings.items():
                    d.append(np.sqrt(max(runs[seed][0]["kl"], 0.0)))
                    r.append(runs[seed][0]["gold"] - g1)
        if len(d) >= 2:
            out[method] = gao_fit(np.asarray(d), np.asarray(r), "bon" if method == "bon" else "rl")
    return out
