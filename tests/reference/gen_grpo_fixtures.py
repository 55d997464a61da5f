"""Generates reference gradients of the GRPO loss itself, in every variant
the learner offers: for each tiny model in fixtures/ (its committed F32
weights, run in float64), PyTorch autograd differentiates the whole
objective over a batch of two groups of three completions, with behaviour
and reference logprobs that differ from the policy's so that ratios clip
and the KL term is not zero.

Per completion i (prompt + completion tokens; the completion's tokens are
scored), per completion token t:

  logp  = log_softmax(logits / T)[token]
  ratio = exp(logp - old)         importance_sampling_level "token"
        = exp(mean_t(logp - old)) "sequence" (GSPO), one per completion
  surr  = min(ratio * A, clamp(ratio, 1 - eps_low, 1 + eps_high) * A)
  surr  = max(surr, c * A) where A < 0 (dual clip, c = dual_clip_c)
  surr *= min(exp(logp' - old), tis_cap) with the ratio taken against
          logp' = logp detached (truncated importance sampling)
  kl    = k1: logp - ref | k2: (logp - ref)^2 / 2 |
          k3: exp(ref - logp) - (ref - logp) - 1
  l_t   = -surr + beta * kl

aggregated by loss_type: "grpo" (mean over each completion's tokens, then
over completions), "bnpo" and "dapo" (mean over all tokens: one process),
"dr_grpo" (sum / (completions * max_completion_length)). Advantages:
"grpo" (r - group mean) / (group std + 1e-4) (population std), "rloo"
r - mean of the group's other rewards, "reinforce_pp" r - group mean, then
(a - batch mean) / (batch std + 1e-4). With kl_in_reward the reward first
loses beta * sum_t kl(old_t, ref_t) (the behaviour's KL, a constant) and
the loss has no KL term. old and ref are the float64 logprobs plus fixed
noise, recorded in the JSON, so the C++ side feeds the same numbers.

Writes fixtures/<name>/grpo.json and fixtures/<name>/grpo.safetensors
("<case>/<parameter name>", F32).

Run:  /usr/bin/python3 tests/reference/gen_grpo_fixtures.py
Deterministic (fixed seeds); gen_tiny_models.py must have run first.
"""

import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from gen_tiny_models import FIXTURES, MODELS, round9, write_json  # noqa: E402
from hf_reference import CausalLM  # noqa: E402
from safetensors_io import read_safetensors, write_safetensors  # noqa: E402

GROUPS = 2
GROUP_SIZE = 3
PROMPT_LENGTH = 4
TEMPERATURE = 0.8
EPS_LOW = 0.2
EPS_HIGH = 0.28
BETA = 0.1
MAX_COMPLETION_LENGTH = 8
BASE = {
    "loss_type": "grpo",
    "importance_sampling_level": "token",
    "dual_clip_c": 0.0,
    "kl_estimator": "k3",
    "advantage_estimator": "grpo",
    "kl_in_reward": False,
    "tis_cap": 0.0,
}
CASES = [
    ("grpo", {}),
    ("bnpo", {"loss_type": "bnpo"}),
    ("dr_grpo", {"loss_type": "dr_grpo"}),
    ("dapo", {"loss_type": "dapo"}),
    ("gspo", {"importance_sampling_level": "sequence"}),
    ("dual_clip", {"dual_clip_c": 1.5}),
    ("kl_k1", {"kl_estimator": "k1"}),
    ("kl_k2", {"kl_estimator": "k2"}),
    ("rloo", {"advantage_estimator": "rloo"}),
    ("reinforce_pp", {"advantage_estimator": "reinforce_pp"}),
    ("kl_in_reward", {"kl_in_reward": True, "kl_estimator": "k1"}),
    ("tis", {"tis_cap": 1.2}),
]


def kl_estimate(estimator, logp, ref):
    if estimator == "k1":
        return logp - ref
    if estimator == "k2":
        return 0.5 * (logp - ref) ** 2
    return torch.exp(ref - logp) - (ref - logp) - 1


def advantages_of(rewards, estimator):
    grouped = rewards.view(GROUPS, GROUP_SIZE)
    mean = grouped.mean(dim=1, keepdim=True)
    if estimator == "grpo":
        std = grouped.std(dim=1, unbiased=False, keepdim=True)
        return ((grouped - mean) / (std + 1e-4)).view(-1)
    if estimator == "rloo":
        others = (grouped.sum(dim=1, keepdim=True) - grouped) / (GROUP_SIZE - 1)
        return (grouped - others).view(-1)
    centred = (grouped - mean).view(-1)
    return (centred - centred.mean()) / (centred.std(unbiased=False) + 1e-4)


def completion_logprobs(model, prompt, completion):
    ids = torch.tensor(prompt + completion, dtype=torch.long)
    logp = torch.log_softmax(model(ids) / TEMPERATURE, dim=-1)
    positions = torch.arange(len(prompt) - 1, len(ids) - 1)
    return logp[positions].gather(1, ids[positions + 1][:, None])[:, 0]


def completion_entropies(model, prompt, completion):
    ids = torch.tensor(prompt + completion, dtype=torch.long)
    logp = torch.log_softmax(model(ids) / TEMPERATURE, dim=-1)
    positions = torch.arange(len(prompt) - 1, len(ids) - 1)
    return -(logp[positions].exp() * logp[positions]).sum(dim=-1)


def generate(name, config, seed):
    out = os.path.join(FIXTURES, name)
    weights, _ = read_safetensors(os.path.join(out, "model.safetensors"))
    model = CausalLM.from_state_dict(config, weights, torch.float64)
    gen = torch.Generator().manual_seed(5000 + seed)
    vocab = config["vocab_size"]
    completions = []
    for g in range(GROUPS):
        prompt = torch.randint(0, vocab, (PROMPT_LENGTH,), generator=gen).tolist()
        for _ in range(GROUP_SIZE):
            length = int(torch.randint(3, 8, (1,), generator=gen))
            completions.append(
                {
                    "prompt": prompt,
                    "tokens": torch.randint(0, vocab, (length,), generator=gen).tolist(),
                    "reward": float(torch.rand(1, generator=gen, dtype=torch.float64)),
                }
            )
    rewards = torch.tensor([c["reward"] for c in completions], dtype=torch.float64)
    with torch.no_grad():
        for c in completions:
            logp = completion_logprobs(model, c["prompt"], c["tokens"])
            n = len(c["tokens"])
            # Noise large enough that some ratios leave [1 - eps, 1 + eps].
            c["old_logprobs"] = [round9(v) for v in (logp + 0.3 * torch.randn(n, generator=gen, dtype=torch.float64)).tolist()]
            c["ref_logprobs"] = [round9(v) for v in (logp + 0.5 * torch.randn(n, generator=gen, dtype=torch.float64)).tolist()]
    with torch.no_grad():
        entropies = torch.cat([completion_entropies(model, c["prompt"], c["tokens"]) for c in completions])
    cases, tensors = [], {}
    for case, changes in CASES:
        o = dict(BASE, **changes)
        case_rewards = rewards.clone()
        if o["kl_in_reward"]:
            for i, c in enumerate(completions):
                old = torch.tensor(c["old_logprobs"], dtype=torch.float64)
                ref = torch.tensor(c["ref_logprobs"], dtype=torch.float64)
                case_rewards[i] -= BETA * kl_estimate(o["kl_estimator"], old, ref).sum()
        advantages = advantages_of(case_rewards, o["advantage_estimator"])
        loss_beta = 0.0 if o["kl_in_reward"] else BETA
        model.zero_grad()
        per_completion, all_terms = [], []
        clipped = dual_clipped = tis_capped = 0
        for i, c in enumerate(completions):
            logp = completion_logprobs(model, c["prompt"], c["tokens"])
            old = torch.tensor(c["old_logprobs"], dtype=torch.float64)
            ref = torch.tensor(c["ref_logprobs"], dtype=torch.float64)
            weight = torch.ones(len(c["tokens"]), dtype=torch.float64)
            if o["tis_cap"] > 0:
                # The ratio against the trainer's own logprobs (1, with a
                # gradient), weighted by the capped trainer/sampler ratio.
                ratio = torch.exp(logp - logp.detach())
                raw = torch.exp(logp.detach() - old)
                tis_capped += int((raw > o["tis_cap"]).sum())
                weight = torch.clamp(raw, max=o["tis_cap"])
            elif o["importance_sampling_level"] == "sequence":
                ratio = torch.exp((logp - old).mean()).expand(len(c["tokens"]))
            else:
                ratio = torch.exp(logp - old)
            a = advantages[i]
            clipped_term = torch.clamp(ratio, 1 - EPS_LOW, 1 + EPS_HIGH) * a
            surr = torch.minimum(ratio * a, clipped_term)
            flat = (ratio * a) > clipped_term
            if o["dual_clip_c"] > 0 and a < 0:
                bound = o["dual_clip_c"] * a
                dual = (bound > surr) & ~flat
                dual_clipped += int(dual.sum())
                flat = flat | (bound > surr)
                surr = torch.maximum(surr, bound.expand_as(surr))
            clipped += int(flat.sum())
            terms = -weight * surr + loss_beta * kl_estimate(o["kl_estimator"], logp, ref)
            per_completion.append(terms.mean())
            all_terms.append(terms)
        tokens = sum(len(t) for t in all_terms)
        if o["loss_type"] == "grpo":
            loss = torch.stack(per_completion).mean()
        elif o["loss_type"] in ("bnpo", "dapo"):
            loss = torch.cat(all_terms).sum() / tokens
        else:
            loss = torch.cat(all_terms).sum() / (len(all_terms) * MAX_COMPLETION_LENGTH)
        loss.backward()
        for param_name, param in model.named_parameters():
            tensors[f"{case}/{param_name}"] = param.grad.to(torch.float32)
        cases.append(
            {
                "name": case,
                "options": o,
                "advantages": [round9(v) for v in advantages.tolist()],
                "loss": round9(loss.item()),
                "clipped_tokens": clipped,
                "dual_clipped_tokens": dual_clipped,
                "tis_capped_tokens": tis_capped,
            }
        )
    write_json(
        os.path.join(out, "grpo.json"),
        {
            "description": "GRPO loss gradients computed in float64 by "
            "tests/reference/gen_grpo_fixtures.py from the F32 weights in "
            "model.safetensors: completions (prompt, tokens, reward, the "
            "behaviour and reference logprobs fed to the loss), the loss "
            "options, and per variant its options, advantages and loss; "
            "grpo.safetensors holds "
            "dLoss/dparameter as '<case>/<parameter name>' (F32).",
            "temperature": TEMPERATURE,
            "epsilon": EPS_LOW,
            "epsilon_high": EPS_HIGH,
            "beta": BETA,
            "group_size": GROUP_SIZE,
            "max_completion_length": MAX_COMPLETION_LENGTH,
            "entropy_mean": round9(entropies.mean().item()),
            "completions": completions,
            "cases": cases,
        },
    )
    write_safetensors(os.path.join(out, "grpo.safetensors"), tensors, {"format": "pt"})
    print(f"{name}: {len(completions)} completions, cases {[c['name'] + ':' + str(c['clipped_tokens']) + ' clipped' + ('/' + str(c['dual_clipped_tokens']) + ' dual' if c['dual_clipped_tokens'] else '') for c in cases]}")


def main():
    torch.set_num_threads(1)
    for name, (config, seed) in MODELS.items():
        generate(name, config, seed)


if __name__ == "__main__":
    main()
