"""GRPO trainer on a tiny random Llama: smoke, exact resume after SIGKILL, 2-process DDP, config
errors, the lr schedule whatever mu and world size."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from reasonlab.config import ConfigError, from_dict
from reasonlab.train.grpo_config import GRPOConfig

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "reasonlab.cli.main"]


def tiny_config(model_dir, **extra) -> dict:
    cfg = {"model": str(model_dir), "steps": 4, "dtype": "fp32", "seed": 3, "report_to": "none",
           "rewards": {"weights": {"toy_rewards:vowels": 1.0, "tag_count": 0.5}},
           "sampling": {"prompts_per_step": 2, "group_size": 4, "max_new_tokens": 12},
           "optim": {"lr": 1e-3, "micro_batch": 4}, "save_every": 2, "keep_last": 3}
    cfg.update(extra)
    return cfg


def write_yaml(path: Path, data: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(data))
    return path


def test_one_step_changes_parameters_with_finite_loss(tmp_path, tiny_dir):
    from reasonlab.train.grpo import GRPOTrainer

    trainer = GRPOTrainer(from_dict(GRPOConfig, tiny_config(tiny_dir, steps=1, save_every=0)), tmp_path)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    metrics = trainer.train_step()
    assert torch.isfinite(torch.tensor(metrics["loss"]))
    assert metrics["grad_norm"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))
    line = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    for key in ("reward", "format_rate", "response_length", "reflection_rate", "entropy", "clip_frac",
                "step_s", "gen_tokens_per_s"):
        assert key in line


@pytest.mark.parametrize("algo", [{"advantage": "dr_grpo", "loss_agg": "seq_mean_token_sum_norm"},
                                  {"advantage": "rloo", "mu": 2, "beta": 0.05, "kl": "k3"}])
def test_algorithm_variants_run(tmp_path, tiny_dir, algo):
    from reasonlab.train.grpo import GRPOTrainer

    cfg = tiny_config(tiny_dir, steps=1, save_every=0, algo=algo)
    m = GRPOTrainer(from_dict(GRPOConfig, cfg), tmp_path).train_step()
    assert torch.isfinite(torch.tensor(m["loss"]))
    if algo.get("beta"):
        assert m["kl"] is not None and m["kl"] >= 0


def test_dynamic_sampling_drops_flat_groups(tmp_path, tiny_dir):
    from reasonlab.train.grpo import GRPOTrainer

    cfg = tiny_config(tiny_dir, steps=1, save_every=0, rewards={"weights": {"accuracy": 1.0}},
                      sampling={"prompts_per_step": 2, "group_size": 4, "max_new_tokens": 8,
                                "dynamic_sampling": True, "max_sampling_rounds": 2})
    m = GRPOTrainer(from_dict(GRPOConfig, cfg), tmp_path).train_step()
    # a random model never answers arithmetic right: every group is flat and dropped; each of the
    # 2 rounds draws the cap, oversample_max (2) x the 2 groups missing
    assert m["groups_sampled"] == 8 and m["sampling_rounds"] == 2
    assert m["groups_informative"] == m["groups_kept"] == 0 and m["loss_seqs"] == 0


def test_lora_checkpoint_is_a_full_model(tmp_path, tiny_dir):
    from transformers import AutoModelForCausalLM

    from reasonlab.train.grpo import GRPOTrainer

    cfg = tiny_config(tiny_dir, steps=1, save_every=1, lora={"r": 4, "alpha": 8})
    GRPOTrainer(from_dict(GRPOConfig, cfg), tmp_path).train()
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "checkpoints" / "step-1")
    assert not any("lora" in n for n, _ in model.named_parameters())


def test_bad_config_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"optim\.lrr: unknown key"):
        from_dict(GRPOConfig, {"optim": {"lrr": 1}})
    with pytest.raises(ConfigError, match=r"sampling\.overlong: 'cut' is not one of"):
        from_dict(GRPOConfig, {"sampling": {"overlong": "cut"}})
    r = subprocess.run(CLI + ["train", "grpo", "--out", str(tmp_path), "algo.clip_hi=0.3"],
                       capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 2 and "algo.clip_hi: unknown key" in r.stderr


def test_difficulty_band_keeps_only_the_prompts_the_policy_sometimes_solves(tmp_path, tiny_dir):
    from reasonlab.errors import DataError
    from reasonlab.train.grpo import GRPOTrainer

    rates = {"arith/train/0": 1.0, "arith/train/1": 0.25, "arith/train/2": 0.0, "arith/train/3": 0.75,
             "elsewhere/7": 0.5}
    problems = tmp_path / "problems.jsonl"
    problems.write_text("".join(json.dumps({"problem_id": k, "pass_rate": v}) + "\n" for k, v in rates.items()))
    cfg = tiny_config(tiny_dir, steps=1, save_every=0, difficulty={"problems": str(problems), "band": [0.1, 0.75]})
    trainer = GRPOTrainer(from_dict(GRPOConfig, cfg), tmp_path / "run")
    assert [p.id for p in trainer.stream.problems] == ["arith/train/1", "arith/train/3"]
    trainer.train_step()
    logged = {json.loads(line)["problem_id"] for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()}
    assert logged <= {"arith/train/1", "arith/train/3"}

    with pytest.raises(ConfigError, match=r"difficulty\.band: needs \[LO, HI\]"):
        from_dict(GRPOConfig, {"difficulty": {"band": [0.8, 0.2]}})
    with pytest.raises(ConfigError, match=r"difficulty\.problems: no such file"):
        from_dict(GRPOConfig, {"difficulty": {"problems": str(tmp_path / "nope.jsonl")}})
    cfg["difficulty"]["band"] = [0.3, 0.4]
    with pytest.raises(DataError, match=r"problems\.jsonl: no problem has a pass rate in \[0\.3, 0\.4\]"):
        GRPOTrainer(from_dict(GRPOConfig, cfg), tmp_path / "run2")
    problems.write_text('{"problem_id": "arith/train/0", "pass_rate": 0.5}\n{"problem_id": "arith/train/1", "pass_rate": "high"}\n')
    with pytest.raises(DataError, match=r"problems\.jsonl:2: pass_rate must be a number"):
        GRPOTrainer(from_dict(GRPOConfig, cfg), tmp_path / "run3")


def final_weights(run: Path, step: int) -> dict:
    from safetensors.torch import load_file

    return load_file(run / "checkpoints" / f"step-{step}" / "model.safetensors")


def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path, tiny_dir):
    cfg = write_yaml(tmp_path / "cfg.yaml", tiny_config(tiny_dir, steps=6))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    straight = tmp_path / "straight"
    subprocess.run(CLI + ["train", "grpo", "--config", str(cfg), "--out", str(straight)],
                   check=True, capture_output=True, cwd=REPO, env=env)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(CLI + ["train", "grpo", "--config", str(cfg), "--out", str(killed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO, env=env)
    deadline = time.time() + 120
    while not (killed / "checkpoints" / "step-2" / "trainer_state.pt").exists():
        assert time.time() < deadline and proc.poll() is None, "run ended before its first checkpoint"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "checkpoints" / "step-6").exists()
    r = subprocess.run(CLI + ["train", "grpo", "--config", str(cfg), "--out", str(killed)],
                       capture_output=True, text=True, cwd=REPO, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "resumed from step" in r.stderr + r.stdout
    a, b = final_weights(straight, 6), final_weights(killed, 6)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k
    m1 = [json.loads(x)["reward"] for x in (straight / "metrics.jsonl").read_text().splitlines()]
    m2 = [json.loads(x)["reward"] for x in (killed / "metrics.jsonl").read_text().splitlines()]
    assert m1 == m2 and len(m1) == 6


DDP_SCRIPT = """
import json, sys, torch
from reasonlab.config import from_dict
from reasonlab.train.grpo import GRPOTrainer
from reasonlab.train.grpo_config import GRPOConfig
cfg = from_dict(GRPOConfig, json.loads(sys.argv[1]))
t = GRPOTrainer(cfg, sys.argv[2])
t.train(progress=False)
flat = torch.cat([p.detach().flatten() for p in t.model.parameters()])
with open(f"{sys.argv[2]}/rank{t.acc.process_index}.json", "w") as f:
    json.dump({"world": t.acc.num_processes, "sum": flat.double().sum().item(), "first": flat[:50].tolist()}, f)
"""


def test_two_process_ddp_step(tmp_path, tiny_dir, free_port):
    """Both processes end with the same weights, and the schedule advances once per step (not
    once per process, accelerate's default): after step 1 of 2 a linear decay is at half."""
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    cfg = json.dumps(tiny_config(tiny_dir, steps=2, save_every=0,
                                 optim={"lr": 1e-3, "micro_batch": 4, "schedule": "linear"}))
    out = tmp_path / "run"
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                        "--master_port", free_port, str(script), cfg, str(out)],
                       capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    r0, r1 = (json.loads((out / f"rank{i}.json").read_text()) for i in (0, 1))
    assert r0["world"] == 2 and r0["first"] == r1["first"] and r0["sum"] == r1["sum"]
    steps = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["lr"] for m in steps] == pytest.approx([0.5e-3, 0.0])
    # the logged counts are both processes' (the compute counter reads them): prompts_per_step
    # (2) on each process, drawn once (no dynamic sampling), G = 4 completions each
    for m in steps:
        assert m["groups_sampled"] == m["groups_kept"] == 4 and m["loss_seqs"] == 16
        assert m["gen_tokens"] >= m["loss_tokens"] > 0 and m["prompt_tokens"] > 0


def test_grpo_step_scores_code_in_the_sandbox(tmp_path, tiny_dir):
    """GRPO on HumanEval with the ``code`` reward. A random model writes no working code, so the
    first completion of each group is swapped for the canonical solution: the sandbox must pass it
    and fail the rest, giving non-flat groups, non-zero advantages and a real gradient step."""
    from reasonlab.train.grpo import GRPOTrainer
    from reasonlab.types import Completion

    cfg = tiny_config(tiny_dir, steps=1, save_every=0, rewards={"weights": {"code": 1.0}},
                      task={"name": "humaneval", "split": "test", "prompt": "plain"},
                      sampling={"prompts_per_step": 2, "group_size": 3, "max_new_tokens": 8})
    trainer = GRPOTrainer(from_dict(GRPOConfig, cfg), tmp_path)
    by_question = {p.question: p for p in trainer.task.load("test")}
    real, tok = trainer.sampler.generate, trainer.tokenizer

    def generate(prompts, params):
        outs = real(prompts, params)
        for prompt, group in zip(prompts, outs):
            p = by_question[prompt[-1]["content"]]
            text = f"```python\n{p.meta['prompt']}{p.answer}```"
            ids = tuple(tok(text, add_special_tokens=False)["input_ids"])
            group[0] = Completion(text, ids, None, "stop", group[0].prompt_token_ids)
        return outs

    trainer.sampler.generate = generate
    m = trainer.train_step()
    assert m["reward/code"] == pytest.approx(1 / 3, abs=1e-4)  # canonical passes all tests, garbage none
    assert m["groups_kept"] == 2 and m["loss_seqs"] == 6 and m["grad_norm"] > 0


def test_lr_schedule_counts_grpo_steps_whatever_mu(tmp_path, tiny_dir):
    """mu updates on one batch share its step's lr: warm-up and decay are in GRPO steps, so the
    logged lr equals a mu=1 run's (3 steps, 1 warm-up step, linear decay to 0)."""
    from reasonlab.train.grpo import GRPOTrainer

    cfg = tiny_config(tiny_dir, steps=3, save_every=0, algo={"mu": 2},
                      optim={"lr": 1e-3, "micro_batch": 4, "warmup_steps": 1, "schedule": "linear"})
    history = GRPOTrainer(from_dict(GRPOConfig, cfg), tmp_path).train(progress=False)
    # the lr logged after step k is the schedule at k: warm-up done at 1, then 1 - (k-1)/2
    assert [m["lr"] for m in history] == pytest.approx([1e-3, 0.5e-3, 0.0])


def test_per_token_metrics_do_not_shrink_with_mu(tmp_path, tiny_dir):
    """Entropy is a per-token mean over the mu passes: with a negligible lr (weights unchanged) a
    mu=2 step reports what a mu=1 step on the same rollout does."""
    from reasonlab.train.grpo import GRPOTrainer

    ent = []
    for mu in (1, 2):
        cfg = tiny_config(tiny_dir, steps=1, save_every=0, algo={"mu": mu}, optim={"lr": 1e-12, "micro_batch": 4})
        ent.append(GRPOTrainer(from_dict(GRPOConfig, cfg), tmp_path / f"mu{mu}").train_step()["entropy"])
    assert ent[0] > 0 and ent[1] == pytest.approx(ent[0], rel=1e-4)
