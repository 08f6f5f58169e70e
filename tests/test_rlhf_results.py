"""The committed §4 study (``docs/rlhf_results.json``) says what the README and notebook 05 say it says.

Every sentence of those texts about the study is a claim about this file; each claim is asserted
here, per seed where the text says "on every seed", on the same 5-point trailing average
(``sweep.smooth``) the notebook's table uses. Rerunning the study (``minift rlhf --out runs/rlhf
--seeds 3``) and committing a result that no longer shows a claim fails here, so the prose has to
change with the numbers.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from minift.rlhf.estimators import best_of_n_kl
from minift.rlhf.sweep import smooth

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "rlhf_results.json"
R = json.loads(RESULTS.read_text(encoding="utf-8"))
SEEDS = [str(s) for s in R["seeds"]]
TRAINED = ("ppo", "grpo", "dpo")


def final(method: str, setting: str, key: str) -> dict[str, float]:
    return {seed: float(smooth([p[key] for p in R["curves"][method][setting][seed]])[-1]) for seed in SEEDS}


def peak(method: str, setting: str) -> dict[str, float]:
    return {seed: float(smooth([p["gold"] for p in R["curves"][method][setting][seed]]).max()) for seed in SEEDS}


def by_beta(method: str) -> list[str]:
    return sorted(R["curves"][method], key=float)


def test_schema_of_the_issue():
    assert len(SEEDS) >= 3 and set(R["curves"]) == {"ppo", "dpo", "grpo", "bon"} == set(R["collapse"])
    assert len(by_beta("ppo")) >= 4 and "0" in R["curves"]["ppo"]
    for method, settings in R["curves"].items():
        for name, runs in settings.items():
            assert set(runs) == set(SEEDS) == set(R["collapse"][method][name])
            for points in runs.values():
                assert points and all(set(p) >= {"kl", "proxy", "gold"} and all(map(math.isfinite, p.values()))
                                      for p in points)
            if method == "bon":
                assert all(len(p) == 1 and p[0]["kl"] == pytest.approx(best_of_n_kl(int(name))) for p in runs.values())
    assert [int(n) for n in sorted(R["curves"]["bon"], key=int)] == [1, 2, 4, 8, 16, 32, 64]


def test_the_setting_has_room_and_an_imperfect_proxy():
    s = R["setting"]
    assert 0.3 <= s["sft_gold"] <= 0.7  # room below the judge's ceiling of 1
    assert 0.6 < s["rm_heldout_accuracy"] < 0.9 and 0.6 < s["pairs_judge_agreement"] < 0.9


def test_the_proxy_rises_on_every_trained_run():
    for method in TRAINED:
        for name in R["curves"][method]:
            for seed in SEEDS:
                points = R["curves"][method][name][seed]
                assert smooth([p["proxy"] for p in points])[-1] > points[0]["proxy"] + 0.5, (method, name, seed)


def test_unleashed_rl_gold_rises_then_falls_on_every_seed():
    for method in ("ppo", "grpo"):
        top, end = peak(method, "0"), final(method, "0", "gold")
        for seed in SEEDS:
            start = R["curves"][method]["0"][seed][0]["gold"]
            assert top[seed] > start + 0.02 and end[seed] < top[seed] - 0.15, (method, seed)


def test_a_larger_beta_ends_nearer_the_reference_and_no_lower_in_gold_on_every_seed():
    for method in TRAINED:
        betas = by_beta(method)
        kl = [final(method, b, "kl") for b in betas]
        gold = [final(method, b, "gold") for b in betas]
        for seed in SEEDS:
            assert all(a[seed] > b[seed] for a, b in zip(kl, kl[1:])), (method, seed)
            assert all(b[seed] >= a[seed] - 0.005 for a, b in zip(gold, gold[1:])), (method, seed)
        assert np.mean(list(gold[-1].values())) > np.mean(list(gold[0].values())) + 0.09


def test_best_of_n_gold_rises_then_falls_below_the_sft_policy_while_its_proxy_climbs():
    gold = {int(n): {s: r[0]["gold"] for s, r in runs.items()} for n, runs in R["curves"]["bon"].items()}
    proxy = {int(n): {s: r[0]["proxy"] for s, r in runs.items()} for n, runs in R["curves"]["bon"].items()}
    ns = sorted(gold)
    for seed in SEEDS:
        assert gold[2][seed] > gold[1][seed] + 0.1 and all(gold[n][seed] < gold[1][seed] for n in ns if n >= 16)
        assert all(proxy[a][seed] < proxy[b][seed] for a, b in zip(ns, ns[1:]))


def test_no_mode_collapse_in_trained_policies_and_collapse_in_best_of_64():
    sft = R["collapse"]["bon"]["1"]
    sft_entropy = np.mean([c["entropy"] for c in sft.values()])
    for method in TRAINED:
        for name, runs in R["collapse"][method].items():
            assert np.mean([c["distinct"] for c in runs.values()]) > 0.5, (method, name)
            assert np.mean([c["entropy"] for c in runs.values()]) > sft_entropy, (method, name)
    assert max(c["distinct"] for c in R["collapse"]["bon"]["64"].values()) < 0.2


def test_the_unleashed_policies_learned_the_annotators_bias():
    """Polite openings: rare in the SFT policy, common once the proxy is optimised hard (GRPO, DPO and
    best-of-64 on every seed; PPO on average: one of its seeds found other exploits), rarer with a leash."""
    polite = {m: {n: [c["polite"] for c in runs.values()] for n, runs in R["collapse"][m].items()} for m in R["collapse"]}
    sft = np.mean(polite["bon"]["1"])
    assert sft < 0.1
    for method in ("grpo", "dpo"):
        loose, tight = by_beta(method)[0], by_beta(method)[-1]
        assert min(polite[method][loose]) > sft + 0.15 and np.mean(polite[method][tight]) < np.mean(polite[method][loose])
    assert min(polite["bon"]["64"]) > sft + 0.2
    assert np.mean(polite["ppo"]["0"]) > sft + 0.2 and np.mean(polite["ppo"]["0.5"]) < sft + 0.05


def test_gao_forms_fit_best_of_n_well_and_rl_poorly():
    fits = R["fits"]
    assert fits["bon"]["form"] == "bon" and fits["bon"]["r2"] > 0.9
    assert all(fits[m]["form"] == "rl" and fits[m]["r2"] < 0.5 for m in TRAINED)
