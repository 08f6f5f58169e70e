"""``minift ppo``: PPO with a KL penalty against the SFT model (§4); ``--sweep`` runs one PPO per β."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

from minift.course.bundled import INSTRUCTIONS_FILE, SAMPLES_DIR, default_tokenizer
from minift.data import Example
from minift.files import write_json
from minift.formats import load_examples
from minift.loop import load_model, run_template
from minift.rlhf.objectives import KL_KINDS
from minift.rlhf.ppo import KL_PLACEMENTS, PPOConfig, make_prompt_set, save_policy, train_ppo
from minift.rlhf.reward_model import check_backbone_matches, load_reward_model
from minift.rlhf.sweep import FINAL_WINDOW, parse_betas, run_sweep
from minift.seeds import describe


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sft", required=True, type=Path, help="SFT run folder (the policy's start and pi_ref)")
    parser.add_argument("--rm", required=True, type=Path, help="reward-model run folder (`minift rm --out`)")
    parser.add_argument("--out", required=True, type=Path, help="run folder for the PPO run (or the sweep)")
    parser.add_argument("--sweep", default=None,
                        help="comma-separated betas, e.g. 0,0.05,0.5: one run each, results.json and figures")
    parser.add_argument("--seeds", type=int, default=1,
                        help="with --sweep: runs per beta, seeds --seed, --seed+1, ... (mean and spread)")
    parser.add_argument("--prompts", type=Path, default=None, help="instructions file (default: bundled train split)")
    parser.add_argument("--template", default=None, help="prompt template (default: the SFT run's)")
    choices = {"kl_kind": ("", *KL_KINDS), "kl_placement": KL_PLACEMENTS}
    notes = {"kl_kind": "; '' = the placement's default: k1 in the reward, k3 in the loss (k1 in the loss is an error)"}
    for name, value in asdict(PPOConfig()).items():  # one flag per PPOConfig field, same defaults
        parser.add_argument("--" + name.replace("_", "-"), type=type(value), default=value, choices=choices.get(name),
                            help=f"PPOConfig.{name} (default {value!r}{notes.get(name, '')})")


def prompt_examples(path: Path | None) -> list[Example]:
    """The instructions PPO samples prompts from: the train split of ``path`` (default: the bundled data)."""
    path = path or SAMPLES_DIR / INSTRUCTIONS_FILE
    chosen = [e for e in load_examples(path) if e.split in ("", "train")]
    if not chosen:
        raise ValueError(f"{path}: no prompt in the train split.")
    return chosen


def show(record: dict, prefix: str = "") -> None:
    print(f"{prefix}it {record['iteration']:3d}  reward {record['reward']:+.3f}  gold {record['gold_reward']:+.3f}  "
          f"KL {record['kl_k1']:.3f}  entropy {record['entropy']:.3f}  clip {record['clip_frac']:.2f}  "
          f"{record['sample'][0]!r}")


def run(args: argparse.Namespace) -> int:
    ppo = PPOConfig(**{k: getattr(args, k) for k in asdict(PPOConfig())})
    sft_params, config = load_model(args.sft)
    rm_params, rm_config, _ = load_reward_model(args.rm)
    check_backbone_matches(rm_config, config, f"reward model {args.rm}")
    tokenizer = default_tokenizer()
    template = args.template or run_template(args.sft)
    prompts = make_prompt_set(prompt_examples(args.prompts), tokenizer, template)
    if args.sweep:
        seeds = list(range(ppo.seed, ppo.seed + args.seeds))
        results = run_sweep(parse_betas(args.sweep), sft_params, config, rm_params, rm_config, prompts,
                            tokenizer, ppo, args.out, seeds=seeds,
                            log=lambda beta, seed, r: show(r, f"beta {beta:g} seed {seed} "))
        print(f"\nfinal values (mean of the last {FINAL_WINDOW} iterations), mean (min–max) over seeds {seeds}:")
        for beta, s in results["summary"].items():
            print(f"  beta {beta:>5}: learned reward {describe(s['final_reward'], False, 2)}, gold "
                  f"{describe(s['final_gold_reward'], False, 2)}, KL {describe(s['final_kl_k1'], False, 2)}")
        print(f"results: {Path(args.out) / 'results.json'}\nfigure:  {Path(args.out) / 'beta_sweep.png'}")
        return 0
    state, _ = train_ppo(sft_params, config, rm_params, rm_config, prompts, tokenizer, ppo,
                         run_dir=args.out, log=show)
    meta = {"ppo": {**asdict(ppo), "kl_estimator": ppo.kl_estimator}, "sft": str(args.sft), "rm": str(args.rm),
            "template": template}
    path = save_policy(args.out, state, config, meta)
    write_json(Path(args.out) / "run.json", {"model": config.to_dict(), **meta})
    print(f"saved the PPO policy to {path}")
    return 0
