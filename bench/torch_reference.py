"""PyTorch reference for issue 7's training-step benchmark (run by bench/issue7.ts, not by hand).

The same step as clinilora's `issue7-float` setup: a Phi-3 decoder with the shipped phi3-nano's shapes
(read from the config.json given), float32, LoRA r=16, alpha=32, dropout 0.05 on qkv_proj and o_proj
(PEFT's math: y = W x + B A dropout(x) * alpha / r, A Kaiming-uniform, B zeros), every position a target
(causal-LM loss), gradient-norm clipping at 1.0 and AdamW on the LoRA weights only. The token ids come
from stdin (the batch clinilora times), so both sides see the same [B, T] batch.

The weights are random (std 0.02): the step's cost does not depend on their values, and Debian's
torch 1.13 has neither safetensors nor PEFT, so LoRA is written out here in PEFT's formulation.

stdin: {"config": <HF config.json>, "ids": [[...], ...], "threads": 2, "reps": 3}
stdout: one JSON object: torch version, threads, step ms (median of reps after 2 warm-ups), tokens/s, loss.
"""
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class LoraLinear(nn.Module):
    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float):
        super().__init__()
        self.base = base
        self.base.weight.requires_grad_(False)
        self.lora_A = nn.Linear(base.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, base.out_features, bias=False)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)
        self.drop = nn.Dropout(dropout)
        self.scaling = alpha / r

    def forward(self, x):
        return self.base(x) + self.lora_B(self.lora_A(self.drop(x))) * self.scaling


class RMSNorm(nn.Module):
    def __init__(self, d: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d), requires_grad=False)
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope(x, cos, sin):
    h = x.shape[-1] // 2
    rot = torch.cat((-x[..., h:], x[..., :h]), dim=-1)
    return x * cos + rot * sin


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, i = c["hidden_size"], c["intermediate_size"]
        self.h, self.kv = c["num_attention_heads"], c["num_key_value_heads"]
        self.hd = d // self.h
        self.qkv_proj = nn.Linear(d, (self.h + 2 * self.kv) * self.hd, bias=False)
        self.o_proj = nn.Linear(d, d, bias=False)
        self.gate_up_proj = nn.Linear(d, 2 * i, bias=False)
        self.down_proj = nn.Linear(i, d, bias=False)
        self.input_layernorm = RMSNorm(d, c["rms_norm_eps"])
        self.post_attention_layernorm = RMSNorm(d, c["rms_norm_eps"])

    def forward(self, x, cos, sin, mask):
        B, T, D = x.shape
        qkv = self.qkv_proj(self.input_layernorm(x))
        q, k, v = qkv.split([self.h * self.hd, self.kv * self.hd, self.kv * self.hd], dim=-1)
        q = rope(q.view(B, T, self.h, self.hd).transpose(1, 2), cos, sin)
        k = rope(k.view(B, T, self.kv, self.hd).transpose(1, 2), cos, sin)
        v = v.view(B, T, self.kv, self.hd).transpose(1, 2)
        if self.kv != self.h:
            k = k.repeat_interleave(self.h // self.kv, dim=1)
            v = v.repeat_interleave(self.h // self.kv, dim=1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd) + mask
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, D)
        x = x + self.o_proj(y)
        gate, up = self.gate_up_proj(self.post_attention_layernorm(x)).chunk(2, dim=-1)
        return x + self.down_proj(F.silu(gate) * up)


class Phi3(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList(Layer(c) for _ in range(c["num_hidden_layers"]))
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.lm_head = nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)

    def forward(self, ids):
        B, T = ids.shape
        hd = self.c["hidden_size"] // self.c["num_attention_heads"]
        inv = 1.0 / (self.c.get("rope_theta", 10000.0) ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
        freqs = torch.outer(torch.arange(T, dtype=torch.float32), inv)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        mask = torch.full((T, T), float("-inf")).triu(1)
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        return self.lm_head(self.norm(x))


def main():
    req = json.load(sys.stdin)
    c = req["config"]
    torch.set_num_threads(int(req.get("threads", 2)))
    torch.manual_seed(0)
    model = Phi3(c)
    for p in model.parameters():
        p.requires_grad_(False)
        if p.dim() == 2:
            nn.init.normal_(p, std=0.02)
    for layer in model.layers:
        layer.qkv_proj = LoraLinear(layer.qkv_proj, 16, 32, 0.05)
        layer.o_proj = LoraLinear(layer.o_proj, 16, 32, 0.05)
    model.train()
    params = [p for n, p in model.named_parameters() if "lora_" in n]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
    ids = torch.tensor(req["ids"], dtype=torch.long)
    B, T = ids.shape
    V = c["vocab_size"]

    def step():
        logits = model(ids)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss.item()

    for _ in range(2):
        step()
    times, loss = [], 0.0
    for _ in range(int(req.get("reps", 3))):
        t0 = time.perf_counter()
        loss = step()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    ms = times[len(times) // 2]
    print(json.dumps({
        "torch": torch.__version__, "threads": torch.get_num_threads(), "blas": "MKL" if torch.backends.mkl.is_available() else "OpenBLAS",
        "B": B, "T": T, "tokens": B * T, "step_ms": round(ms, 1), "tokens_per_s": round(B * T * 1000 / ms, 1), "loss": loss,
        "lora_params": sum(p.numel() for p in params),
    }))


if __name__ == "__main__":
    main()
