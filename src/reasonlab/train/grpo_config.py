"""GRPO configuration: one small dataclass per concern, composed by recipe YAML files.

Every field's range and every registry name (task, prompt, rewards, advantage, policy loss,
aggregation, KL estimator, importance-sampling correction, backend) is checked when the config
is loaded (``check()``, called by ``config.from_dict``): a typo fails in a second with the key's
path, not after the model has loaded and the first rollout has run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from reasonlab.config import require, require_name
from reasonlab.models import LoraConfig
from reasonlab.train.core import OptimConfig, check_common


@dataclass
class TaskConfig:
    name: str = "arith"
    options: dict[str, Any] = field(default_factory=dict)  # e.g. {max_number: 20}
    split: str = "train"
    prompt: str = "r1"

    def check(self) -> None:
        from reasonlab.prompts import PROMPTS
        from reasonlab.tasks.base import TASKS
        import reasonlab.tasks  # noqa: F401  (fills TASKS)

        require_name(TASKS, self.name, "name")
        require_name(PROMPTS, self.prompt, "prompt")


@dataclass
class DifficultyConfig:
    """Train only on prompts whose pass rate, measured on the policy, lies in ``band`` (inclusive):
    ``problems`` is the ``problems.jsonl`` of ``reasonlab generate --n K`` on the task's split
    (``traces/select.py``). Unset: every prompt of the split."""
    problems: str | None = None
    band: tuple[float, float] = (0.0, 1.0)

    def check(self) -> None:
        from pathlib import Path

        from reasonlab.traces.select import valid_band

        require(valid_band(self.band), "band", f"needs [LO, HI] with 0 <= LO <= HI <= 1, got {list(self.band)}")
        if self.problems is not None:
            require(Path(self.problems).is_file(), "problems", f"no such file: {self.problems}")


@dataclass
class RewardConfig:
    weights: dict[str, float] = field(default_factory=lambda: {"accuracy": 1.0, "format": 1.0})
    options: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-reward kwargs

    def check(self) -> None:
        from reasonlab.rewards import REWARDS

        require(bool(self.weights), "weights", "needs at least one reward")
        for name in self.weights:
            require_name(REWARDS, name, f"weights.{name}")
        for name in self.options:
            require(name in self.weights, f"options.{name}",
                    f"options for a reward that is not in weights ({', '.join(self.weights)})")


@dataclass
class SamplingConfig:
    """Rollouts per step. ``dynamic_sampling`` (DAPO) drops groups whose rewards are all equal and
    keeps ``prompts_per_step`` informative ones, drawn over-provisioned (``train/rollout.py``):
    round 1 draws, in one batch, as many groups as the running keep rate (starting from
    ``keep_rate_prior``) says are needed, at most ``oversample_max`` times ``prompts_per_step`` (1:
    only the groups still missing, round after round); a further round, sized the same way for the
    groups still missing, up to ``max_sampling_rounds``, runs only when that fell short.
    Informative groups beyond ``prompts_per_step`` are dropped (the first ones drawn are kept)."""

    prompts_per_step: int = 8  # per process: under accelerate launch a step has this x processes
    group_size: int = 8  # G completions per prompt
    max_new_tokens: int = 128
    temperature: float = 1.0
    top_p: float = 1.0
    dynamic_sampling: bool = False  # DAPO: drop groups with equal rewards, top up the batch
    max_sampling_rounds: int = 3
    oversample_max: float = 2.0  # dynamic sampling: a round draws <= this x the groups still needed
    keep_rate_prior: float = 0.7  # dynamic sampling: the share of informative groups assumed at step 1
    overlong: Literal["none", "mask", "soft"] = "none"  # DAPO overlong filtering / soft penalty
    overlong_buffer: int = 32  # soft: tokens before max_new_tokens where the penalty ramps up
    overlong_penalty: float = 1.0

    def check(self) -> None:
        require(self.prompts_per_step >= 1, "prompts_per_step", f"must be >= 1, got {self.prompts_per_step}")
        require(self.group_size >= 2, "group_size",
                f"must be >= 2: group-relative advantages of a group of {self.group_size} are all 0, "
                f"so nothing would be learned")
        require(self.max_new_tokens >= 1, "max_new_tokens", f"must be >= 1, got {self.max_new_tokens}")
        require(self.temperature > 0, "temperature",
                f"must be > 0 (GRPO needs diverse samples in a group), got {self.temperature}")
        require(0 < self.top_p <= 1, "top_p", f"must be in (0, 1], got {self.top_p}")
        require(self.max_sampling_rounds >= 1, "max_sampling_rounds", f"must be >= 1, got {self.max_sampling_rounds}")
        require(self.oversample_max >= 1, "oversample_max",
                f"must be >= 1 (1 draws only the groups still needed), got {self.oversample_max}")
        require(0 < self.keep_rate_prior <= 1, "keep_rate_prior", f"must be in (0, 1], got {self.keep_rate_prior}")
        require(self.overlong != "soft" or 0 <= self.overlong_buffer < self.max_new_tokens, "overlong_buffer",
                f"must be in [0, max_new_tokens) with overlong: soft, got {self.overlong_buffer}")
        require(self.overlong_penalty >= 0, "overlong_penalty", f"must be >= 0, got {self.overlong_penalty}")


@dataclass
class AlgoConfig:
    """``mu`` updates on one sampled batch share that GRPO step's learning rate: the schedule
    (``optim.warmup_steps``, decay) counts GRPO steps, not optimizer updates."""

    advantage: str = "grpo"  # grpo | dr_grpo | rloo | module:function
    loss: str = "clip"  # policy loss: clip (PPO/DAPO clip-higher) | reinforce | gspo | module:function
    loss_agg: str = "token_mean"  # token_mean | seq_mean_token_mean | seq_mean_token_sum_norm
    clip_low: float = 0.2  # gspo clips sequence ratios, far tighter: 3e-4
    clip_high: float = 0.2  # DAPO clip-higher: 0.28; gspo: 4e-4
    beta: float = 0.0  # KL coefficient; the reference model is loaded only when > 0
    kl: str = "k3"
    mu: int = 1  # policy updates per sampled batch
    # sampler/trainer mismatch (algos/correction.py): auto = none for the hf backend (our sampler
    # runs the trainer's weights, on-policy up to bf16 rounding), tis for any other engine
    correction: str = "auto"  # auto | none | tis | module:function
    tis_cap: float = 2.0  # tis: the cap C of min(pi_old / pi_sampler, C)

    def check(self) -> None:
        from reasonlab.algos import ADVANTAGES, AGGREGATIONS, IS_CORRECTIONS, KL_ESTIMATORS, POLICY_LOSSES

        require_name(ADVANTAGES, self.advantage, "advantage")
        require_name(POLICY_LOSSES, self.loss, "loss")
        require_name(AGGREGATIONS, self.loss_agg, "loss_agg")
        require_name(KL_ESTIMATORS, self.kl, "kl")
        if self.correction != "auto":
            require_name(IS_CORRECTIONS, self.correction, "correction")
        require(self.tis_cap > 0, "tis_cap", f"must be > 0, got {self.tis_cap}")
        require(0 <= self.clip_low < 1, "clip_low", f"must be in [0, 1), got {self.clip_low}")
        require(self.clip_high >= 0, "clip_high", f"must be >= 0, got {self.clip_high}")
        require(self.beta >= 0, "beta", f"must be >= 0, got {self.beta}")
        require(self.mu >= 1, "mu", f"must be >= 1, got {self.mu}")


@dataclass
class BackendConfig:
    """Where rollouts are sampled: ``hf`` (our sampler, sharing the training weights) or
    ``vllm`` (vLLM's engine in this process, CPU or CUDA build, loaded with the trainer's weights
    after every step; ``options`` go to ``vllm.LLM``, e.g. ``max_model_len``, ``max_num_seqs``)."""

    name: str = "hf"
    options: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        from reasonlab.backends.factory import BACKENDS, load_backends

        load_backends()
        require_name(BACKENDS, self.name, "name")
        require(self.name != "openai", "name", "a remote server cannot sample from the weights being trained")


@dataclass
class GRPOConfig:
    model: str = "smollm2-135m"
    steps: int = 50
    seed: int = 0
    dtype: str = "auto"  # autocast dtype for forward/backward and the sampler; master weights fp32
    task: TaskConfig = field(default_factory=TaskConfig)
    difficulty: DifficultyConfig = field(default_factory=DifficultyConfig)
    rewards: RewardConfig = field(default_factory=RewardConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    algo: AlgoConfig = field(default_factory=AlgoConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    backend: BackendConfig = field(default_factory=BackendConfig)
    lora: LoraConfig | None = None
    save_every: int = 25
    keep_last: int = 2
    log_samples: int = 4  # completions per step written to samples.jsonl
    report_to: str = "tensorboard"  # trackers, comma list | none (train/trackers.py)

    def check(self) -> None:
        require(self.steps >= 1, "steps", f"must be >= 1, got {self.steps}")
        check_common(self)

    def correction_name(self) -> str:
        """The importance-sampling correction to use, ``algo.correction: auto`` resolved."""
        if self.algo.correction != "auto":
            return self.algo.correction
        return "none" if self.backend.name == "hf" else "tis"
