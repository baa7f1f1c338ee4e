"""SFT trainer on a tiny random Llama: learning, exact resume after SIGKILL (mid-epoch and at an
epoch boundary), bad rows named by file:line, LoRA, 2-process DDP, eval of a checkpoint."""

import json
import os
import subprocess
import sys

import pytest
import torch

from faults import REPO, kill_when, run
from reasonlab import prompts
from reasonlab.config import from_dict
from reasonlab.train.sft import SFTConfig


def r1_rows(n: int) -> list[dict]:
    from reasonlab.tasks.base import get_task

    rows = []
    for p in get_task("arith").load("train", n):
        msgs = prompts.build(p, "r1_noprefill")
        answer = f"<think>\n{p.question[8:-1]} = {p.answer}\n</think>\n<answer>{p.answer}</answer>"
        rows.append({"messages": msgs + [{"role": "assistant", "content": answer}]})
    return rows


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in r1_rows(24)))
    return path


def cfg(model_dir, data_path, **extra) -> dict:
    c = {"model": str(model_dir), "data": str(data_path), "epochs": 2, "dtype": "fp32", "seed": 5,
         "max_len": 128, "batch_size": 4, "pack": False, "report_to": "none", "save_every": 1, "keep_last": 20,
         "optim": {"lr": 3e-3, "warmup_steps": 2, "schedule": "cosine", "micro_batch": 2}}
    c.update(extra)
    return c


def test_sft_learns_the_targets(tmp_path, tiny_dir, data):
    from reasonlab.train.sft import SFTTrainer

    t = SFTTrainer(from_dict(SFTConfig, cfg(tiny_dir, data, epochs=6, save_every=0)), tmp_path)
    before = [p.detach().clone() for p in t.model.parameters()]
    hist = t.train(progress=False)
    assert len(hist) == 36 and all(torch.isfinite(torch.tensor(h["loss"])) for h in hist)
    first, last = sum(h["loss"] for h in hist[:6]) / 6, sum(h["loss"] for h in hist[-6:]) / 6
    assert last < 0.8 * first  # a random 49K-vocab model starts at ln(49152) = 10.8
    assert any(not torch.equal(a, b) for a, b in zip(before, t.model.parameters()))
    assert t.stats.examples == 24 and hist[0]["target_tokens"] > 0


def test_checkpoint_template_bakes_the_detected_r1_format(tmp_path, tiny_dir, data):
    from transformers import AutoTokenizer

    from reasonlab.train.sft import SFTTrainer

    SFTTrainer(from_dict(SFTConfig, cfg(tiny_dir, data, epochs=1, max_steps=1)), tmp_path).train(progress=False)
    tok = AutoTokenizer.from_pretrained(tmp_path / "checkpoints" / "step-1")
    text = tok.apply_chat_template([{"role": "user", "content": "What is 1 + 1?"}], add_generation_prompt=True,
                                   tokenize=False)
    assert text.startswith("<|im_start|>system\n" + prompts.R1_SYSTEM) and text.endswith("assistant\n<think>\n")


@pytest.mark.parametrize("kill_after", [3, 6])  # mid-epoch, and exactly at the end of epoch 1 (6 steps/epoch)
def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path, tiny_dir, data, kill_after):
    import yaml
    from safetensors.torch import load_file

    c = tmp_path / "cfg.yaml"
    c.write_text(yaml.safe_dump(cfg(tiny_dir, data)))
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    run(["train", "sft", "--config", str(c), "--out", str(straight)])
    kill_when(["train", "sft", "--config", str(c), "--out", str(killed)],
              killed / "checkpoints" / f"step-{kill_after}" / "manifest.json")
    r = run(["train", "sft", "--config", str(c), "--out", str(killed)])
    assert "resumed from step" in r.stderr
    la = [json.loads(x)["loss"] for x in (straight / "metrics.jsonl").read_text().splitlines()]
    lb = [json.loads(x)["loss"] for x in (killed / "metrics.jsonl").read_text().splitlines()]
    assert len(la) == len(lb) == 12
    assert all(abs(x - y) <= 1e-6 for x, y in zip(la, lb)), (la, lb)
    wa = load_file(straight / "checkpoints" / "step-12" / "model.safetensors")
    wb = load_file(killed / "checkpoints" / "step-12" / "model.safetensors")
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)


def test_bad_rows_are_named_by_file_and_line(tmp_path, tiny_dir):
    good = r1_rows(6)
    lines = [json.dumps(good[0]), "{not json", json.dumps({"messages": [{"content": "no role"}]}),
             json.dumps({"messages": [{"role": "user", "content": "only a question"}]}),
             json.dumps({"prompt": "Q?", "completion": ""})] + [json.dumps(r) for r in good[1:]]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    r = run(["train", "sft", "--data", str(path), "--out", str(out), "--model", str(tiny_dir), "dtype=fp32"],
            check=False)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    for line in (2, 3, 4, 5):
        assert f"bad.jsonl:{line}:" in r.stderr
    assert "4 bad row(s)" in r.stderr and not (out / "checkpoints").exists()
    r = run(["train", "sft", "--data", str(path), "--out", str(out), "--model", str(tiny_dir), "dtype=fp32",
             "--on-bad-rows", "skip", "max_steps=1", "batch_size=2"])
    stats = json.loads((out / "data_stats.json").read_text())
    assert stats["bad_rows"] == 4 and stats["examples"] == 6
    assert "skipped 4 bad rows" in r.stderr


def test_lora_checkpoint_is_a_full_model_and_evaluates(tmp_path, tiny_dir, data):
    from transformers import AutoModelForCausalLM

    from reasonlab.train.sft import SFTTrainer

    c = cfg(tiny_dir, data, epochs=1, max_steps=2, save_every=2, lora={"r": 4, "alpha": 8})
    SFTTrainer(from_dict(SFTConfig, c), tmp_path / "run").train(progress=False)
    ckpt = tmp_path / "run" / "checkpoints" / "step-2"
    model = AutoModelForCausalLM.from_pretrained(ckpt)
    assert not any("lora" in n for n, _ in model.named_parameters())
    run(["eval", "--model", str(ckpt), "--task", "arith", "--limit", "2", "--n", "1", "--max-new-tokens", "4",
         "--out", str(tmp_path / "eval")])
    assert json.loads((tmp_path / "eval" / "summary.json").read_text())["problems"] == 2


DDP_SCRIPT = """
import json, sys, torch
from reasonlab.config import from_dict
from reasonlab.train.sft import SFTConfig, SFTTrainer
t = SFTTrainer(from_dict(SFTConfig, json.loads(sys.argv[1])), sys.argv[2])
hist = t.train(progress=False)
flat = torch.cat([p.detach().flatten() for p in t.model.parameters()])
with open(f"{sys.argv[2]}/rank{t.acc.process_index}.json", "w") as f:
    json.dump({"world": t.acc.num_processes, "sum": flat.double().sum().item(), "targets": hist[-1]["target_tokens"]}, f)
"""


def test_two_process_ddp(tmp_path, tiny_dir, data, free_port):
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    out = tmp_path / "run"
    out.mkdir()
    c = json.dumps(cfg(tiny_dir, data, epochs=1, max_steps=2, save_every=0))
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                        "--master_port", free_port, str(script), c, str(out)],
                       capture_output=True, text=True, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"},
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    r0, r1 = (json.loads((out / f"rank{i}.json").read_text()) for i in (0, 1))
    assert r0["world"] == 2 and r0["sum"] == r1["sum"] and r0["targets"] == r1["targets"] > 0
    # the logged counts are both processes' (the compute counter reads them): 4 rows a step, 2 each
    steps = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["rows"] for m in steps] == [4, 4] and all(m["row_tokens"] >= 4 for m in steps)
