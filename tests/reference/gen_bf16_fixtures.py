"""Generates the BF16-compute references: for each tiny model, its BF16
weights (fixtures/<name>/model_bf16/model.safetensors) run in float64 with
the input of every projection and of the LM head, and the keys and values
of the BF16 KV cache, rounded to bfloat16
(hf_reference.CausalLM.round_matmul_inputs_to_bf16), which is the
arithmetic the runtime's BF16 path promises up to its float32 accumulation.

Writes, into fixtures/<name>/model_bf16/:
  bf16_compute.json          the logits and next-token logprobs of the
                             sequences of expected.json, and the gradient
                             batch and cases of ../gradients.json with the
                             float64 logprobs and losses under BF16 compute;
  bf16_gradients.safetensors dLoss/dparameter per case ('<case>/<name>', F32),
                             the gradient a mixed-precision trainer applies
                             to its float32 master weights;
  bf16_backward_gradients.safetensors
                             the same with BF16 backward products: each
                             projection's and the LM head's output gradient
                             rounded to bfloat16 before its products
                             (CausalLM.round_output_gradients_to_bf16), as
                             the runtime's default BF16 backward does.

Run from anywhere:  /usr/bin/python3 tests/reference/gen_bf16_fixtures.py
Deterministic; gen_tiny_models.py and gen_grad_fixtures.py must have run.
"""

import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from gen_grad_fixtures import batch_logprobs  # noqa: E402
from gen_tiny_models import FIXTURES, MODELS, logits_cases, round9, write_json  # noqa: E402
from hf_reference import CausalLM  # noqa: E402
from safetensors_io import read_safetensors, write_safetensors  # noqa: E402


def generate(name):
    out = os.path.join(FIXTURES, name, "model_bf16")
    with open(os.path.join(out, "config.json")) as f:
        config = json.load(f)
    with open(os.path.join(out, "expected.json")) as f:
        sequences = [case["ids"] for case in json.load(f)["cases"]]
    with open(os.path.join(FIXTURES, name, "gradients.json")) as f:
        grad_fixture = json.load(f)
    weights, _ = read_safetensors(os.path.join(out, "model.safetensors"))
    model = CausalLM.from_state_dict(config, weights, torch.float64).round_matmul_inputs_to_bf16()

    sequence_cases = logits_cases(model, sequences)


    bf16_backward = CausalLM.from_state_dict(config, weights, torch.float64)
    bf16_backward.round_matmul_inputs_to_bf16().round_output_gradients_to_bf16()

    grad_cases, tensors, backward_tensors = [], {}, {}
    for case in grad_fixture["cases"]:
        w = torch.tensor(case["dloss_dlogprob"], dtype=torch.float64)
        if case["name"] == "cross_entropy":
            w = torch.full_like(w, -1.0 / w.numel())
        for reference, out_tensors in ((model, tensors), (bf16_backward, backward_tensors)):
            reference.zero_grad()
            logprobs = batch_logprobs(reference, grad_fixture["sequences"], case["temperature"])
            loss = (w * logprobs).sum()
            loss.backward()
            for param_name, param in reference.named_parameters():
                out_tensors[f"{case['name']}/{param_name}"] = param.grad.to(torch.float32)
        worst = max(
            ((backward_tensors[k] - tensors[k]).abs().max() / tensors[k].abs().max()).item()
            for k in tensors
            if k.startswith(case["name"] + "/")
        )
        print(f"{name} {case['name']}: BF16 backward products move a gradient by up to {worst:.2e} of its largest entry")
        grad_cases.append(
            {
                "name": case["name"],
                "temperature": case["temperature"],
                "dloss_dlogprob": [round9(v) for v in w.tolist()],
                "loss": round9(loss.item()),
                "logprobs": [round9(v) for v in logprobs.tolist()],
            }
        )

    write_json(
        os.path.join(out, "bf16_compute.json"),
        {
            "description": "BF16 compute in float64: the BF16 weights of "
            "model.safetensors, every projection's and the LM head's input "
            "and the cached keys (after rotary) and values rounded to "
            "bfloat16, all else float64 "
            "(tests/reference/gen_bf16_fixtures.py). 'cases': logits and "
            "next-token logprobs of expected.json's sequences; 'sequences' "
            "and 'gradient_cases': the batch of ../gradients.json and, per "
            "case, its logprobs and loss; bf16_gradients.safetensors holds "
            "dLoss/dparameter as '<case>/<parameter name>' (F32).",
            "cases": sequence_cases,
            "sequences": grad_fixture["sequences"],
            "gradient_cases": grad_cases,
        },
    )
    write_safetensors(os.path.join(out, "bf16_gradients.safetensors"), tensors, {"format": "pt"})
    write_safetensors(
        os.path.join(out, "bf16_backward_gradients.safetensors"), backward_tensors, {"format": "pt"}
    )

    # How far the BF16 reference is from the same BF16 weights without
    # rounding the activations: the scale of what BF16 compute changes.
    plain = CausalLM.from_state_dict(config, weights, torch.float64)
    with torch.no_grad():
        shift = max((plain(ids) - model(ids)).abs().max().item() for ids in sequences)
    print(f"{name}: rounding the matmul inputs moves the logits by up to {shift:.2e}")


def main():
    torch.set_num_threads(1)  # Deterministic reductions.
    for name in MODELS:
        generate(name)


if __name__ == "__main__":
    main()
