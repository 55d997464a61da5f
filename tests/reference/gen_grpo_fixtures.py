"""Generates reference gradients of the GRPO loss itself: for each tiny
model in fixtures/ (its committed F32 weights, run in float64), PyTorch
autograd differentiates the whole GRPO objective over a batch of two groups
of three completions, with behaviour and reference logprobs that differ
from the policy's so that ratios clip and the KL term is not zero.

Per completion i (prompt + completion tokens; the completion's tokens are
scored), with advantage A_i = (r_i - mean_group) / (std_group + 1e-4)
(population std), per completion token t:

  logp  = log_softmax(logits / T)[token]
  ratio = exp(logp - old)
  surr  = min(ratio * A, clamp(ratio, 1 - eps_low, 1 + eps_high) * A)
  kl    = exp(ref - logp) - (ref - logp) - 1
  l_t   = -surr + beta * kl

aggregated two ways: "sequence_mean" (mean over each completion's tokens,
then over completions) and "token_mean" (mean over all tokens). old and ref
are the float64 logprobs plus fixed noise, recorded in the JSON, so the C++
side feeds the same numbers.

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
CASES = ("sequence_mean", "token_mean")


def completion_logprobs(model, prompt, completion):
    ids = torch.tensor(prompt + completion, dtype=torch.long)
    logp = torch.log_softmax(model(ids) / TEMPERATURE, dim=-1)
    positions = torch.arange(len(prompt) - 1, len(ids) - 1)
    return logp[positions].gather(1, ids[positions + 1][:, None])[:, 0]


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
    grouped = rewards.view(GROUPS, GROUP_SIZE)
    mean = grouped.mean(dim=1, keepdim=True)
    std = grouped.std(dim=1, unbiased=False, keepdim=True)
    advantages = ((grouped - mean) / (std + 1e-4)).view(-1)
    with torch.no_grad():
        for c in completions:
            logp = completion_logprobs(model, c["prompt"], c["tokens"])
            n = len(c["tokens"])
            # Noise large enough that some ratios leave [1 - eps, 1 + eps].
            c["old_logprobs"] = [round9(v) for v in (logp + 0.3 * torch.randn(n, generator=gen, dtype=torch.float64)).tolist()]
            c["ref_logprobs"] = [round9(v) for v in (logp + 0.5 * torch.randn(n, generator=gen, dtype=torch.float64)).tolist()]
    cases, tensors = [], {}
    for case in CASES:
        model.zero_grad()
        per_completion, all_terms = [], []
        clipped = 0
        for i, c in enumerate(completions):
            logp = completion_logprobs(model, c["prompt"], c["tokens"])
            old = torch.tensor(c["old_logprobs"], dtype=torch.float64)
            ref = torch.tensor(c["ref_logprobs"], dtype=torch.float64)
            ratio = torch.exp(logp - old)
            a = advantages[i]
            surr = torch.minimum(ratio * a, torch.clamp(ratio, 1 - EPS_LOW, 1 + EPS_HIGH) * a)
            kl = torch.exp(ref - logp) - (ref - logp) - 1
            terms = -surr + BETA * kl
            per_completion.append(terms.mean())
            all_terms.append(terms)
            clipped += int(((ratio * a) > torch.clamp(ratio, 1 - EPS_LOW, 1 + EPS_HIGH) * a).sum())
        if case == "sequence_mean":
            loss = torch.stack(per_completion).mean()
        else:
            loss = torch.cat(all_terms).mean()
        loss.backward()
        for param_name, param in model.named_parameters():
            tensors[f"{case}/{param_name}"] = param.grad.to(torch.float32)
        cases.append({"name": case, "loss": round9(loss.item()), "clipped_tokens": clipped})
    write_json(
        os.path.join(out, "grpo.json"),
        {
            "description": "GRPO loss gradients computed in float64 by "
            "tests/reference/gen_grpo_fixtures.py from the F32 weights in "
            "model.safetensors: completions (prompt, tokens, reward, the "
            "behaviour and reference logprobs fed to the loss), the loss "
            "options, and per aggregation the loss; grpo.safetensors holds "
            "dLoss/dparameter as '<case>/<parameter name>' (F32).",
            "temperature": TEMPERATURE,
            "epsilon": EPS_LOW,
            "epsilon_high": EPS_HIGH,
            "beta": BETA,
            "group_size": GROUP_SIZE,
            "advantages": [round9(v) for v in advantages.tolist()],
            "completions": completions,
            "cases": cases,
        },
    )
    write_safetensors(os.path.join(out, "grpo.safetensors"), tensors, {"format": "pt"})
    print(f"{name}: {len(completions)} completions, cases {[c['name'] + ':' + str(c['clipped_tokens']) + ' clipped' for c in cases]}")


def main():
    torch.set_num_threads(1)
    for name, (config, seed) in MODELS.items():
        generate(name, config, seed)


if __name__ == "__main__":
    main()
