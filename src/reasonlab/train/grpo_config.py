"""GRPO configuration: one small dataclass per concern, composed by recipe YAML files."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from reasonlab.models import LoraConfig


@dataclass
class TaskConfig:
    name: str = "arith"
    options: dict[str, Any] = field(default_factory=dict)  # e.g. {max_number: 20}
    split: str = "train"
    prompt: str = "r1"


@dataclass
class RewardConfig:
    weights: dict[str, float] = field(default_factory=lambda: {"accuracy": 1.0, "format": 1.0})
    options: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-reward kwargs


@dataclass
class SamplingConfig:
    prompts_per_step: int = 8
    group_size: int = 8  # G completions per prompt
    max_new_tokens: int = 128
    temperature: float = 1.0
    top_p: float = 1.0
    dynamic_sampling: bool = False  # DAPO: drop groups with equal rewards, top up the batch
    max_sampling_rounds: int = 3
    overlong: Literal["none", "mask", "soft"] = "none"  # DAPO overlong filtering / soft penalty
    overlong_buffer: int = 32  # soft: tokens before max_new_tokens where the penalty ramps up
    overlong_penalty: float = 1.0


@dataclass
class AlgoConfig:
    advantage: str = "grpo"  # grpo | dr_grpo | rloo | module:function
    loss_agg: str = "token_mean"  # token_mean | seq_mean_token_mean | seq_mean_token_sum_norm
    clip_low: float = 0.2
    clip_high: float = 0.2  # DAPO clip-higher: 0.28
    beta: float = 0.0  # KL coefficient; the reference model is loaded only when > 0
    kl: str = "k3"
    mu: int = 1  # policy updates per sampled batch


@dataclass
class OptimConfig:
    lr: float = 1e-5
    weight_decay: float = 0.0
    warmup_steps: int = 0
    max_grad_norm: float = 1.0
    micro_batch: int = 16  # sequences per forward/backward
    betas: tuple[float, ...] = (0.9, 0.99)


@dataclass
class GRPOConfig:
    model: str = "smollm2-135m"
    steps: int = 50
    seed: int = 0
    dtype: str = "auto"  # autocast dtype for forward/backward and the sampler; master weights fp32
    task: TaskConfig = field(default_factory=TaskConfig)
    rewards: RewardConfig = field(default_factory=RewardConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    algo: AlgoConfig = field(default_factory=AlgoConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    lora: LoraConfig | None = None
    save_every: int = 25
    keep_last: int = 2
    log_samples: int = 4  # completions per step written to samples.jsonl
    tensorboard: bool = True
