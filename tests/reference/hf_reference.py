"""A plain-PyTorch Qwen3 / Qwen2 / Llama causal LM, written from the semantics
of Hugging Face transformers' modeling_{qwen3,qwen2,llama}.py, for computing
independent expected outputs (logits now, gradients later).

Module and parameter names follow transformers, so state_dict() keys are the
checkpoint tensor names ("model.layers.0.self_attn.q_proj.weight", ...).

Differences from transformers, all on purpose:
  * RMSNorm, softmax and the rotary tables are computed in the model's dtype
    when it is float64 (transformers rounds them through float32), so a
    float64 model gives a float64-accurate reference. Lower-precision models
    still normalise and softmax in float32, as transformers does.
  * Only what the runtime implements is accepted: no rope scaling, sliding
    windows, MLP biases, or o_proj biases.

BF16 compute (CausalLM.round_matmul_inputs_to_bf16()): the input of every
projection and of the LM head is rounded to bfloat16 (nearest even) before
the product, and so are the keys (after rotary) and values that a BF16 KV
cache stores, everything else staying in the model's dtype; the backward
passes gradients through the rounding unchanged (straight-through), and the
weight gradient is formed from the rounded input, as autocast's saved bf16
input gives. With float64 weights holding BF16 values this is the exact
arithmetic of a BF16 matmul with a float64 accumulator.

BF16 backward products (also CausalLM.round_output_gradients_to_bf16()):
the gradient arriving at the output of every projection and of the LM head
is rounded to bfloat16 before it is multiplied by the weight (for the input
gradient) and by the rounded input (for the weight gradient), as a BF16
matmul's backward does; a bias gradient sums the unrounded gradient, and
the products themselves stay float64.
"""

import math
import types

import torch
from torch import nn


def _compute_dtype(dtype):
    return torch.promote_types(dtype, torch.float32)


def resolve_config(config):
    """Fills defaults the way transformers' config classes do and refuses
    options this model does not implement. Returns a new dict."""
    c = dict(config)
    model_type = c["model_type"]
    if model_type not in ("qwen3", "qwen2", "llama"):
        raise ValueError(f"unsupported model_type {model_type}")
    if c.get("rope_scaling") is not None:
        raise ValueError("rope_scaling is not supported")
    if c.get("use_sliding_window"):
        raise ValueError("sliding window attention is not supported")
    if c.get("hidden_act", "silu") != "silu":
        raise ValueError("only silu is supported")
    if c.get("mlp_bias"):
        raise ValueError("mlp_bias is not supported")
    if c.get("num_key_value_heads") is None:
        c["num_key_value_heads"] = c["num_attention_heads"]
    if c.get("head_dim") is None:
        c["head_dim"] = c["hidden_size"] // c["num_attention_heads"]
    c.setdefault("rms_norm_eps", 1e-6)
    c.setdefault("rope_theta", 10000.0)
    c.setdefault("tie_word_embeddings", False)
    # Qwen2 always has q/k/v biases (none on o_proj); Llama and Qwen3 put
    # attention_bias on o_proj too, which the runtime does not implement.
    if model_type == "qwen2":
        c["qkv_bias"] = True
    else:
        if c.get("attention_bias", False):
            raise ValueError("attention_bias is only supported for qwen2")
        c["qkv_bias"] = False
    c["qk_norm"] = model_type == "qwen3"
    return c


class RMSNorm(nn.Module):
    def __init__(self, size, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        h = x.to(_compute_dtype(dtype))
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        # transformers multiplies after casting back to the input dtype.
        return self.weight * h.to(dtype)


def rotary_tables(head_dim, theta, positions, dtype):
    """cos and sin, [T, head_dim], in the rotate_half layout: frequency i
    drives dims i and i + head_dim/2."""
    work = _compute_dtype(dtype)
    exponents = torch.arange(0, head_dim, 2, dtype=torch.int64).to(work) / head_dim
    inv_freq = 1.0 / (theta**exponents)
    angles = positions.to(work)[:, None] * inv_freq[None, :]
    emb = torch.cat([angles, angles], dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def round_to_bf16(x):
    """x rounded to bfloat16 values in x's dtype; identity for gradients."""
    return x + (x.to(torch.bfloat16).to(x.dtype) - x).detach()


class _RoundGradientToBf16(torch.autograd.Function):
    """Identity forward; the backward rounds the incoming gradient to
    bfloat16 values, as a BF16 matmul's backward reads its output gradient."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad.to(torch.bfloat16).to(grad.dtype)


def round_gradient_to_bf16(x):
    return _RoundGradientToBf16.apply(x)


def _linear_with_bf16_backward(module, x):
    """nn.Linear whose product sees its output gradient rounded to bfloat16;
    the bias gradient is the column sum of the unrounded gradient."""
    y = round_gradient_to_bf16(x @ module.weight.T)
    return y if module.bias is None else y + module.bias


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        h, d = c["hidden_size"], c["head_dim"]
        self.num_heads = c["num_attention_heads"]
        self.num_kv_heads = c["num_key_value_heads"]
        self.head_dim = d
        self.q_proj = nn.Linear(h, self.num_heads * d, bias=c["qkv_bias"])
        self.k_proj = nn.Linear(h, self.num_kv_heads * d, bias=c["qkv_bias"])
        self.v_proj = nn.Linear(h, self.num_kv_heads * d, bias=c["qkv_bias"])
        self.o_proj = nn.Linear(self.num_heads * d, h, bias=False)
        if c["qk_norm"]:
            # Over head_dim only, per head, before the rotary embedding.
            self.q_norm = RMSNorm(d, c["rms_norm_eps"])
            self.k_norm = RMSNorm(d, c["rms_norm_eps"])
        else:
            self.q_norm = self.k_norm = None
        self.bf16_kv = False

    def forward(self, x, cos, sin):
        t = x.shape[0]
        q = self.q_proj(x).view(t, self.num_heads, self.head_dim)
        k = self.k_proj(x).view(t, self.num_kv_heads, self.head_dim)
        v = self.v_proj(x).view(t, self.num_kv_heads, self.head_dim)
        if self.q_norm is not None:
            q = self.q_norm(q)
            k = self.k_norm(k)
        q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)  # [heads, T, d]
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if self.bf16_kv:
            # A BF16 KV cache holds the keys (after rotary) and values.
            k, v = round_to_bf16(k), round_to_bf16(v)
        # Grouped-query attention: KV head j serves query heads
        # j*groups .. (j+1)*groups-1 (transformers' repeat_kv).
        groups = self.num_heads // self.num_kv_heads
        k = k.repeat_interleave(groups, dim=0)
        v = v.repeat_interleave(groups, dim=0)
        scores = (q @ k.transpose(1, 2)) / math.sqrt(self.head_dim)
        causal = torch.ones(t, t, dtype=torch.bool).triu(1)
        scores = scores.masked_fill(causal, float("-inf"))
        probs = torch.softmax(scores, dim=-1, dtype=_compute_dtype(scores.dtype)).to(q.dtype)
        out = (probs @ v).transpose(0, 1).reshape(t, self.num_heads * self.head_dim)
        return self.o_proj(out)


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        h, i = c["hidden_size"], c["intermediate_size"]
        self.gate_proj = nn.Linear(h, i, bias=False)
        self.up_proj = nn.Linear(h, i, bias=False)
        self.down_proj = nn.Linear(i, h, bias=False)

    def forward(self, x):
        return self.down_proj(nn.functional.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        # Registration order = state_dict order = transformers' order.
        self.self_attn = Attention(c)
        self.mlp = MLP(c)
        self.input_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.post_attention_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class Backbone(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList(DecoderLayer(c) for _ in range(c["num_hidden_layers"]))
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])


class CausalLM(nn.Module):
    """logits = CausalLM(config)(token_ids) for one sequence (positions 0..T-1)."""

    def __init__(self, config):
        super().__init__()
        self.config = resolve_config(config)
        c = self.config
        self.model = Backbone(c)
        self.lm_head = None if c["tie_word_embeddings"] else nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)
        self.bf16_matmul_inputs = False
        self.bf16_output_gradients = False

    def round_matmul_inputs_to_bf16(self):
        """Switches on BF16 compute (see the module docstring)."""
        self.bf16_matmul_inputs = True
        for module in self.modules():
            if isinstance(module, nn.Linear):
                module.register_forward_pre_hook(lambda _, args: (round_to_bf16(args[0]),))
            if isinstance(module, Attention):
                module.bf16_kv = True
        return self

    def round_output_gradients_to_bf16(self):
        """Switches on BF16 backward products (see the module docstring)."""
        self.bf16_output_gradients = True
        for module in self.modules():
            if isinstance(module, nn.Linear):
                module.forward = types.MethodType(_linear_with_bf16_backward, module)
        return self

    @classmethod
    def from_state_dict(cls, config, state_dict, dtype=torch.float64):
        """Builds the model and loads the tensors (strictly: every parameter
        present, nothing extra), converted to `dtype`."""
        model = cls(config).to(dtype)
        state = {k: v for k, v in state_dict.items() if not k.endswith("rotary_emb.inv_freq")}
        if model.config["tie_word_embeddings"]:
            state.pop("lm_head.weight", None)
        # load_state_dict converts each tensor to its parameter's dtype.
        model.load_state_dict(state, strict=True)
        return model

    def forward(self, ids):
        ids = torch.as_tensor(ids, dtype=torch.long)
        x = self.model.embed_tokens(ids)
        positions = torch.arange(ids.shape[0])
        cos, sin = rotary_tables(self.config["head_dim"], self.config["rope_theta"], positions, x.dtype)
        for layer in self.model.layers:
            x = layer(x, cos, sin)
        x = self.model.norm(x)
        head = self.model.embed_tokens.weight if self.lm_head is None else self.lm_head.weight
        if self.bf16_matmul_inputs:
            x = round_to_bf16(x)
        logits = x @ head.T
        return round_gradient_to_bf16(logits) if self.bf16_output_gradients else logits


def next_token_logprobs(logits, ids):
    """log p(ids[t+1] | ids[..t]) for t = 0..T-2, in the logits' dtype."""
    logp = torch.log_softmax(logits, dim=-1)
    ids = torch.as_tensor(ids, dtype=torch.long)
    return logp[:-1].gather(1, ids[1:, None])[:, 0]
