"""Tiny randomly initialised models of each architecture family the fast forward implements.

Each is built with its special features switched on where the config allows (sliding windows
shorter than test sequences, Llama-3 RoPE scaling past its original context, NoPE layers,
Gemma's two RoPE tables and final softcap); norm weights and biases are perturbed away from
their init (ones / zeros), so a missing norm offset or bias shows in a comparison.
"""

import torch
from transformers import (Gemma3ForCausalLM, Gemma3TextConfig, LlamaConfig, LlamaForCausalLM, MistralConfig,
                          MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM,
                          SmolLM3Config, SmolLM3ForCausalLM)

V = 256
COMMON = dict(vocab_size=V, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=128, initializer_range=0.1, bos_token_id=1,
              eos_token_id=2, pad_token_id=0)
LLAMA3_ROPE = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 16}
GEMMA_ROPE = {"sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
              "full_attention": {"rope_type": "default", "rope_theta": 1e6}}
FAMILIES = {  # test id -> (model type, builder)
    "smollm2": ("llama", lambda: LlamaForCausalLM(LlamaConfig(**COMMON, tie_word_embeddings=True))),
    "llama3": ("llama", lambda: LlamaForCausalLM(LlamaConfig(**COMMON, rope_scaling=LLAMA3_ROPE))),
    "mistral": ("mistral", lambda: MistralForCausalLM(MistralConfig(**COMMON, sliding_window=8))),
    "qwen2.5": ("qwen2", lambda: Qwen2ForCausalLM(Qwen2Config(**COMMON, use_sliding_window=True, sliding_window=8,
                                                                max_window_layers=1))),
    "qwen3": ("qwen3", lambda: Qwen3ForCausalLM(Qwen3Config(**COMMON, head_dim=16, use_sliding_window=True,
                                                              sliding_window=8, max_window_layers=1))),
    "smollm3": ("smollm3", lambda: SmolLM3ForCausalLM(SmolLM3Config(**COMMON, no_rope_layer_interval=2,
                                                                    use_sliding_window=True, sliding_window=8))),
    "gemma3": ("gemma3_text", lambda: Gemma3ForCausalLM(Gemma3TextConfig(
        **COMMON, head_dim=16, query_pre_attn_scalar=24, sliding_window=8, final_logit_softcapping=30.0,
        layer_types=["sliding_attention", "full_attention"], rope_parameters=GEMMA_ROPE))),
}


def build(family: str):
    torch.manual_seed(0)
    m = FAMILIES[family][1]().eval()
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "norm" in name or name.endswith("bias"):
                p.add_(torch.randn_like(p) * 0.3)
    m.generation_config.eos_token_id = None  # run the full NEW tokens on both sides
    return m


def prompts() -> list[list[int]]:
    g = torch.Generator().manual_seed(1)
    return [torch.randint(3, V, (n,), generator=g).tolist() for n in (13, 6)]  # unequal: left padding
