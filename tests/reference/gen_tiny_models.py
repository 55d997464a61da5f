"""Generates tests/reference/fixtures: tiny random Qwen3 / Qwen2 / Llama
checkpoints and their expected logits, computed in float64 by the plain
PyTorch model in hf_reference.py.

First it checks that model against an independent source: the stories260K
golden outputs (../shared/models/stories260K/reference.json), which were
computed by a separate llama2.c-convention implementation.

Run from anywhere:  /usr/bin/python3 tests/reference/gen_tiny_models.py
The output is deterministic (fixed torch seeds), so re-running reproduces the
committed files byte for byte on the same PyTorch version.
"""

import json
import os
import shutil
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from hf_reference import CausalLM, next_token_logprobs  # noqa: E402
from safetensors_io import read_safetensors, write_safetensors  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
STORIES = os.path.join(ROOT, "..", "shared", "models", "stories260K")
FIXTURES = os.path.join(HERE, "fixtures")
SEQUENCE_LENGTHS = (1, 7, 13)

ARCHITECTURES = {
    "qwen3": "Qwen3ForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "llama": "LlamaForCausalLM",
}


def hf_config(model_type, **shape):
    """A config.json as transformers writes it for these architectures."""
    c = {
        "architectures": [ARCHITECTURES[model_type]],
        "model_type": model_type,
        "vocab_size": 96,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 8,
        "hidden_act": "silu",
        "max_position_embeddings": 64,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "rope_scaling": None,
        "tie_word_embeddings": False,
        "attention_dropout": 0.0,
        "bos_token_id": None,
        "eos_token_id": [1, 2],
        "torch_dtype": "float32",
    }
    c.update(shape)
    if model_type == "llama":
        c.update(attention_bias=False, mlp_bias=False)
    else:
        c.update(use_sliding_window=False, sliding_window=None)
        if model_type == "qwen3":
            c["attention_bias"] = False
    return c


# name -> (config, torch seed).
MODELS = {
    # head_dim 16 != hidden 32 / 4 heads: catches code that derives it.
    "qwen3_tied": (hf_config("qwen3", head_dim=16, tie_word_embeddings=True), 1),
    "qwen3_untied": (hf_config("qwen3", head_dim=8, num_key_value_heads=1), 2),
    "qwen2": (hf_config("qwen2", head_dim=8), 3),
    "llama": (
        hf_config(
            "llama",
            num_key_value_heads=4,
            rms_norm_eps=1e-5,
            rope_theta=10000.0,
            bos_token_id=1,
            eos_token_id=2,
        ),
        4,
    ),
}


def random_state_dict(config, seed):
    """Weights that make the outputs sensitive to every parameter: matrices,
    embeddings and biases ~ N(0, 0.2^2), norm gains ~ 1 + N(0, 0.1^2)."""
    gen = torch.Generator().manual_seed(seed)
    shapes = CausalLM(config).state_dict()
    state = {}
    for name, like in shapes.items():
        noise = torch.randn(like.shape, generator=gen, dtype=torch.float32)
        if name.endswith("norm.weight"):
            state[name] = 1.0 + 0.1 * noise
        else:
            state[name] = 0.2 * noise
    return state


def round9(x):
    return float(f"{x:.9g}")


def float32_deviation(config, state, sequences, expected):
    """How far the same model run in float32 lands from the float64 truth:
    the scale of agreement to expect from a float32 implementation."""
    model = CausalLM.from_state_dict(config, state, torch.float32)
    with torch.no_grad():
        return max(
            (model(ids).double() - torch.tensor(case["logits"], dtype=torch.float64)).abs().max().item()
            for ids, case in zip(sequences, expected["cases"])
        )


def logits_cases(model, sequences):
    """Per sequence: its ids, the model's logits and next-token logprobs,
    rounded to 9 significant digits (the cases of every expected.json)."""
    cases = []
    with torch.no_grad():
        for ids in sequences:
            logits = model(ids)
            logprobs = next_token_logprobs(logits, ids)
            cases.append(
                {
                    "ids": ids,
                    "logits": [[round9(v) for v in row] for row in logits.tolist()],
                    "next_token_logprobs": [round9(v) for v in logprobs.tolist()],
                }
            )
    return cases


def expected_outputs(config, state, sequences, weights_note):
    cases = logits_cases(CausalLM.from_state_dict(config, state, torch.float64), sequences)
    return {
        "description": "Logits [T, vocab] and log p(ids[t+1] | ids[..t]) for "
        "each sequence (positions 0..T-1), computed in float64 by "
        "tests/reference/hf_reference.py from " + weights_note + ", rounded "
        "to 9 significant digits.",
        "cases": cases,
    }


def write_json(path, value):
    with open(path, "w") as f:
        json.dump(value, f, indent=1)
        f.write("\n")


def generate(name, config, seed):
    out = os.path.join(FIXTURES, name)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(os.path.join(out, "model_bf16"))
    state = random_state_dict(config, seed)
    gen = torch.Generator().manual_seed(1000 + seed)
    sequences = [
        torch.randint(0, config["vocab_size"], (n,), generator=gen).tolist() for n in SEQUENCE_LENGTHS
    ]
    metadata = {"format": "pt"}

    write_json(os.path.join(out, "config.json"), config)
    write_safetensors(os.path.join(out, "model.safetensors"), state, metadata)
    expected = expected_outputs(config, state, sequences, "the F32 weights in model.safetensors")
    write_json(os.path.join(out, "expected.json"), expected)

    # The same model stored as BF16; its expectation is computed from the
    # rounded weights, so it is what a correct BF16 load must produce.
    bf16 = {k: v.to(torch.bfloat16) for k, v in state.items()}
    bf16_config = dict(config, torch_dtype="bfloat16")
    write_json(os.path.join(out, "model_bf16", "config.json"), bf16_config)
    write_safetensors(os.path.join(out, "model_bf16", "model.safetensors"), bf16, metadata)
    write_json(
        os.path.join(out, "model_bf16", "expected.json"),
        expected_outputs(bf16_config, bf16, sequences, "the BF16 weights in model.safetensors"),
    )

    # Round trip through our own reader, as a check on the writer.
    back, meta = read_safetensors(os.path.join(out, "model_bf16", "model.safetensors"))
    assert meta == metadata and list(back) == list(bf16)
    assert all(torch.equal(back[k], bf16[k]) for k in bf16)

    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(out) for f in files)
    deviation = float32_deviation(config, state, sequences, expected)
    print(
        f"{name}: {sum(v.numel() for v in state.values())} parameters, {size} bytes; "
        f"the model in float32 is within {deviation:.1e} of these logits"
    )


def check_against_stories260k():
    """The reference model must reproduce an independent implementation's
    golden outputs on real trained weights."""
    with open(os.path.join(STORIES, "config.json")) as f:
        config = json.load(f)
    with open(os.path.join(STORIES, "reference.json")) as f:
        reference = json.load(f)
    tensors, _ = read_safetensors(os.path.join(STORIES, "model.safetensors"))
    model = CausalLM.from_state_dict(config, tensors, torch.float64)
    with torch.no_grad():
        prompt = reference["prompt_logits"]["prompt_ids"]
        expected = torch.tensor(reference["prompt_logits"]["logits"], dtype=torch.float64)
        diff = (model(prompt) - expected).abs().max().item()
        print(f"stories260K prompt_logits: max |diff| = {diff:.3e}")
        if diff > 1e-4:
            raise SystemExit("reference model disagrees with stories260K reference.json")

        greedy = reference["greedy_from_prompt"]
        ids = list(greedy["prompt_ids"])
        while len(ids) < len(greedy["ids"]):
            ids.append(int(model(ids)[-1].argmax()))
        if ids != greedy["ids"]:
            first = next(i for i, (a, b) in enumerate(zip(ids, greedy["ids"])) if a != b)
            raise SystemExit(f"greedy_from_prompt differs at position {first}")
        print(f"stories260K greedy_from_prompt: all {len(ids) - len(greedy['prompt_ids'])} generated ids match")


def main():
    torch.set_num_threads(1)  # Deterministic reductions.
    check_against_stories260k()
    for name, (config, seed) in MODELS.items():
        generate(name, config, seed)


if __name__ == "__main__":
    main()
