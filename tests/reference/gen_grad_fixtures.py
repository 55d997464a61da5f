"""Generates reference gradients for the training backward pass: for each
tiny model in fixtures/ (its committed F32 weights, run in float64), PyTorch
autograd computes the gradient of every parameter for three losses over one
batch of sequences:

  cross_entropy   L = -(1/N) sum_t logp_t                    (SFT, T = 1)
  weighted_t1     L = sum_t w_t logp_t, w_t ~ N(0, 1)         (T = 1)
  weighted_t07    L = sum_t w_t logp_t, other w_t             (T = 0.7)

where logp_t = log_softmax(logits_t / T)[ids[t + 1]] over the target
positions t of each sequence. dL/dlogp_t = w_t is what a GRPO-style trainer
backpropagates, so these are exactly the gradients the C++ Backward must
produce.

Writes fixtures/<name>/gradients.json (the batch, and per case its
temperature, dL/dlogp per target, the loss and the float64 logprobs) and
fixtures/<name>/gradients.safetensors (F32 tensors named
"<case>/<parameter name>", in state_dict order).

Run from anywhere:  /usr/bin/python3 tests/reference/gen_grad_fixtures.py
Deterministic (fixed seeds); gen_tiny_models.py must have run first.
"""

import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from gen_tiny_models import FIXTURES, MODELS, round9, write_json  # noqa: E402
from hf_reference import CausalLM  # noqa: E402
from safetensors_io import read_safetensors, write_safetensors  # noqa: E402

# (length, target positions): a prompt/completion split, a longer one, and a
# short sequence whose targets are not contiguous.
SEQUENCES = ((9, list(range(2, 8))), (14, list(range(4, 13))), (4, [0, 2]))
CASES = (("cross_entropy", 1.0), ("weighted_t1", 1.0), ("weighted_t07", 0.7))


def batch_logprobs(model, batch, temperature):
    """logp_t for every target of every sequence, in batch order."""
    out = []
    for seq in batch:
        ids = torch.tensor(seq["tokens"], dtype=torch.long)
        logp = torch.log_softmax(model(ids) / temperature, dim=-1)
        targets = torch.tensor(seq["targets"], dtype=torch.long)
        out.append(logp[targets].gather(1, ids[targets + 1][:, None])[:, 0])
    return torch.cat(out)


def loss_weights(case, num_targets, seed):
    if case == "cross_entropy":
        return torch.full((num_targets,), -1.0 / num_targets, dtype=torch.float64)
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(num_targets, generator=gen, dtype=torch.float64)


def generate(name, config, seed):
    out = os.path.join(FIXTURES, name)
    weights, _ = read_safetensors(os.path.join(out, "model.safetensors"))
    model = CausalLM.from_state_dict(config, weights, torch.float64)
    gen = torch.Generator().manual_seed(2000 + seed)
    batch = [
        {"tokens": torch.randint(0, config["vocab_size"], (n,), generator=gen).tolist(), "targets": targets}
        for n, targets in SEQUENCES
    ]
    num_targets = sum(len(s["targets"]) for s in batch)
    cases, tensors = [], {}
    for i, (case, temperature) in enumerate(CASES):
        model.zero_grad()
        logprobs = batch_logprobs(model, batch, temperature)
        w = loss_weights(case, num_targets, 3000 + 10 * seed + i)
        loss = (w * logprobs).sum()
        loss.backward()
        for param_name, param in model.named_parameters():
            tensors[f"{case}/{param_name}"] = param.grad.to(torch.float32)
        cases.append(
            {
                "name": case,
                "temperature": temperature,
                "dloss_dlogprob": [round9(v) for v in w.tolist()],
                "loss": round9(loss.item()),
                "logprobs": [round9(v) for v in logprobs.tolist()],
            }
        )
    write_json(
        os.path.join(out, "gradients.json"),
        {
            "description": "A batch of sequences (tokens; target positions t, "
            "each scored on tokens[t + 1]) and, per case, the temperature, "
            "dLoss/dlogprob per target in batch order, the loss "
            "sum_t dloss_dlogprob[t] * logprobs[t] and the logprobs, computed "
            "in float64 by tests/reference/gen_grad_fixtures.py from the F32 "
            "weights in model.safetensors. gradients.safetensors holds "
            "dLoss/dparameter as '<case>/<parameter name>' (F32).",
            "sequences": batch,
            "cases": cases,
        },
    )
    write_safetensors(os.path.join(out, "gradients.safetensors"), tensors, {"format": "pt"})
    print(f"{name}: {num_targets} targets, {len(tensors)} gradient tensors")


def main():
    torch.set_num_threads(1)  # Deterministic reductions.
    for name, (config, seed) in MODELS.items():
        generate(name, config, seed)


if __name__ == "__main__":
    main()
