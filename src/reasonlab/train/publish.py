"""What a trainer hands its rollout engine after each optimizer step: the full model's weights.

One place, so every engine gets the same thing: ``(name, tensor)`` pairs named as in the plain
Hugging Face ``*ForCausalLM`` (``model.layers.0.self_attn.q_proj.weight``), LoRA deltas merged,
detached, with no DDP or peft wrapper in sight. A tied ``lm_head`` appears once, as its embedding
(engines tie it themselves). Sharded training (FSDP / ZeRO-3) is refused before this runs
(``grpo.refuse_sharded``); gathering the shards belongs here when it lands.
"""

from __future__ import annotations

from typing import Iterator

import torch

from reasonlab.models import base_model, merged_weight


def full_weights(model) -> Iterator[tuple[str, torch.Tensor]]:
    m = base_model(model)
    lora = {name for name, mod in m.named_modules()
            if hasattr(mod, "base_layer") and hasattr(mod, "get_delta_weight")}
    modules = dict(m.named_modules())
    for name, param in m.named_parameters():
        if ".lora_" in name:
            continue
        owner, _, leaf = name.rpartition(".base_layer.")
        if owner in lora:
            yield f"{owner}.{leaf}", merged_weight(modules[owner]) if leaf == "weight" else param.detach()
        else:
            yield name, param.detach()
