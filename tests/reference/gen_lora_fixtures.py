"""Generates LoRA references (issue 16): for two tiny models, adapters in
PEFT's on-disk format and what the adapted model computes, in float64.

LoRA as PEFT documents it (LoraConfig, LoraLayer): a targeted projection
y = x W^T + b becomes
    y = x W^T + b + s * (x A^T) B^T,   A [r, in], B [out, r],
with s = lora_alpha / r, or lora_alpha / sqrt(r) when use_rslora, no
dropout at inference. PEFT initialises A at random and B at zero, so a
fresh adapter leaves the model unchanged; these fixtures draw B at random
too, so that the logits move and dLoss/dA is not zero.

Per model, two adapters:
  lora_all7    r = 4, lora_alpha = 8, all seven projections, scale a/r;
  lora_qv_rs   r = 2, lora_alpha = 3, q_proj and v_proj only, rsLoRA.
Each is written to fixtures/<name>/<adapter>/:
  adapter_config.json        PEFT's config fields;
  adapter_model.safetensors  F32 tensors under PEFT's names
      base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight, ...;
  expected.json              logits and next-token logprobs of the base
                             model's expected.json sequences, with the
                             adapter; and, for the batch and cases of
                             ../gradients.json, the logprobs and the loss;
  gradients.safetensors      dLoss/dA and dLoss/dB per case
                             ('<case>/<PEFT tensor name>', F32), the base
                             frozen.

Run from anywhere:  /usr/bin/python3 tests/reference/gen_lora_fixtures.py
Deterministic; gen_tiny_models.py and gen_grad_fixtures.py must have run.
"""

import json
import math
import os
import sys

import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from gen_grad_fixtures import batch_logprobs  # noqa: E402
from gen_tiny_models import FIXTURES, MODELS, logits_cases, round9, write_json  # noqa: E402
from hf_reference import CausalLM  # noqa: E402
from safetensors_io import read_safetensors, write_safetensors  # noqa: E402

ALL_SEVEN = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
ADAPTERS = {
    "lora_all7": {"r": 4, "lora_alpha": 8, "target_modules": ALL_SEVEN, "use_rslora": False},
    "lora_qv_rs": {"r": 2, "lora_alpha": 3, "target_modules": ["q_proj", "v_proj"], "use_rslora": True},
}
MODEL_NAMES = ("qwen3_tied", "llama")


class LoraLinear(nn.Module):
    """A frozen nn.Linear plus s * (x A^T) B^T."""

    def __init__(self, base, a, b, scale):
        super().__init__()
        self.base = base
        self.lora_A = nn.Parameter(a)
        self.lora_B = nn.Parameter(b)
        self.scale = scale

    def forward(self, x):
        return self.base(x) + self.scale * ((x @ self.lora_A.T) @ self.lora_B.T)


def attach(model, adapter, seed):
    """Wraps the targeted projections; returns {PEFT name: parameter}."""
    r, alpha = adapter["r"], adapter["lora_alpha"]
    scale = alpha / math.sqrt(r) if adapter["use_rslora"] else alpha / r
    gen = torch.Generator().manual_seed(seed)
    params = {}
    for n, layer in enumerate(model.model.layers):
        for block_name in ("self_attn", "mlp"):
            block = getattr(layer, block_name)
            for proj in adapter["target_modules"]:
                base = getattr(block, proj, None)
                if base is None:
                    continue
                out_f, in_f = base.weight.shape
                # A as PEFT draws it (kaiming-uniform, a = sqrt(5): U(+-1/sqrt(in)));
                # B random instead of zero (see the module docstring).
                bound = 1.0 / math.sqrt(in_f)
                a = (torch.rand(r, in_f, generator=gen, dtype=torch.float64) * 2 - 1) * bound
                b = torch.randn(out_f, r, generator=gen, dtype=torch.float64) * 0.05
                # The fixture stores F32; compute with exactly those values.
                a, b = a.float().double(), b.float().double()
                wrapped = LoraLinear(base, a, b, scale)
                setattr(block, proj, wrapped)
                prefix = f"base_model.model.model.layers.{n}.{block_name}.{proj}"
                params[f"{prefix}.lora_A.weight"] = wrapped.lora_A
                params[f"{prefix}.lora_B.weight"] = wrapped.lora_B
    return params


def check_merge_identity(config, weights, params, adapter, model, sequences):
    """The adapted model must equal the base model with W + s B A in place of
    each targeted W (PEFT's merge), a check of LoraLinear and of the names."""
    r, alpha = adapter["r"], adapter["lora_alpha"]
    scale = alpha / math.sqrt(r) if adapter["use_rslora"] else alpha / r
    merged = {k: v.double().clone() for k, v in weights.items()}
    for peft_name, a in params.items():
        if ".lora_A." not in peft_name:
            continue
        b = params[peft_name.replace(".lora_A.", ".lora_B.")]
        base_name = peft_name.replace("base_model.model.", "", 1).replace(".lora_A.weight", ".weight")
        merged[base_name] += scale * (b.detach() @ a.detach())
    merged_model = CausalLM.from_state_dict(config, merged, torch.float64)
    with torch.no_grad():
        for ids in sequences:
            diff = (merged_model(ids) - model(ids)).abs().max().item()
            assert diff < 1e-10, f"merged and adapted logits differ by {diff}"


def generate(name, seed):
    config = MODELS[name][0]
    base_dir = os.path.join(FIXTURES, name)
    with open(os.path.join(base_dir, "expected.json")) as f:
        sequences = [case["ids"] for case in json.load(f)["cases"]]
    with open(os.path.join(base_dir, "gradients.json")) as f:
        grad_fixture = json.load(f)
    weights, _ = read_safetensors(os.path.join(base_dir, "model.safetensors"))
    for i, (adapter_name, adapter) in enumerate(ADAPTERS.items()):
        model = CausalLM.from_state_dict(config, weights, torch.float64)
        for p in model.parameters():
            p.requires_grad_(False)
        params = attach(model, adapter, 5000 + 10 * seed + i)
        out = os.path.join(base_dir, adapter_name)
        os.makedirs(out, exist_ok=True)
        write_json(
            os.path.join(out, "adapter_config.json"),
            {
                "base_model_name_or_path": name,
                "bias": "none",
                "fan_in_fan_out": False,
                "inference_mode": True,
                "lora_alpha": adapter["lora_alpha"],
                "lora_dropout": 0.0,
                "peft_type": "LORA",
                "r": adapter["r"],
                "target_modules": adapter["target_modules"],
                "task_type": "CAUSAL_LM",
                "use_rslora": adapter["use_rslora"],
            },
        )
        write_safetensors(
            os.path.join(out, "adapter_model.safetensors"),
            {k: v.detach().to(torch.float32) for k, v in params.items()},
            {"format": "pt"},
        )
        sequence_cases = logits_cases(model, sequences)
        check_merge_identity(config, weights, params, adapter, model, sequences)
        grad_cases, tensors = [], {}
        for case in grad_fixture["cases"]:
            for p in params.values():
                p.grad = None
            logprobs = batch_logprobs(model, grad_fixture["sequences"], case["temperature"])
            w = torch.tensor(case["dloss_dlogprob"], dtype=torch.float64)
            loss = (w * logprobs).sum()
            loss.backward()
            for param_name, p in params.items():
                tensors[f"{case['name']}/{param_name}"] = p.grad.to(torch.float32)
            grad_cases.append(
                {
                    "name": case["name"],
                    "logprobs": [round9(v) for v in logprobs.tolist()],
                    "loss": round9(loss.item()),
                }
            )
        write_json(
            os.path.join(out, "expected.json"),
            {
                "description": "The base model of ../model.safetensors with this "
                "adapter (adapter_config.json, adapter_model.safetensors), in "
                "float64 (tests/reference/gen_lora_fixtures.py): logits and "
                "next-token logprobs per sequence, and, for the batch and "
                "dloss_dlogprob of each case of ../gradients.json, the logprobs "
                "and the loss. gradients.safetensors holds dLoss/dA and dLoss/dB "
                "as '<case>/<PEFT tensor name>' (F32), the base frozen.",
                "cases": sequence_cases,
                "gradient_cases": grad_cases,
            },
        )
        write_safetensors(os.path.join(out, "gradients.safetensors"), tensors, {"format": "pt"})
        print(f"{name}/{adapter_name}: {len(params)} adapter tensors")


def main():
    torch.set_num_threads(1)  # Deterministic reductions.
    for name in MODEL_NAMES:
        generate(name, MODELS[name][1])


if __name__ == "__main__":
    main()
