"""SFT of a Qwen3 model on multi-turn reasoning traces: Qwen3's own chat template rewrites
<think> blocks (drops them before the last user query, re-spaces the last), so ``chat_template=own``
refuses the rows; ``verbatim`` (and ``auto``, which switches to it) trains on exactly the assistant
tokens and saves a checkpoint whose template plain transformers renders as trained.
Tiny random Qwen3 + byte-level BPE tokenizer carrying Qwen3's template, built here."""

import json
import logging

import pytest
import torch

from reasonlab import prompts
from reasonlab.config import ConfigError, from_dict
from reasonlab.errors import DataError
from reasonlab.train import template
from reasonlab.train.sft import SFTConfig, SFTTrainer
from tiny_qwen3 import qwen3_tokenizer, save_tiny_qwen3


def answer(a: int, b: int) -> str:
    return f"<think>\n{a} + {b} = {a + b}\n</think>\n<answer>{a + b}</answer>"


def question(a: int, b: int) -> str:
    return f"What is {a} + {b}?"


ROWS = [{"messages": [{"role": "system", "content": prompts.R1_SYSTEM},
                      {"role": "user", "content": question(a, a + 1)},
                      {"role": "assistant", "content": answer(a, a + 1)},
                      {"role": "user", "content": question(a + 2, 3)},
                      {"role": "assistant", "content": answer(a + 2, 3)}]} for a in (1, 4)] + \
       [{"messages": [{"role": "system", "content": prompts.R1_SYSTEM},
                      {"role": "user", "content": question(a, 2)},
                      {"role": "assistant", "content": answer(a, 2)}]} for a in (3, 7)]


@pytest.fixture(scope="module")
def qwen3(tmp_path_factory):
    root = tmp_path_factory.mktemp("qwen3")
    data = root / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    corpus = [m["content"] for r in ROWS for m in r["messages"]]
    return save_tiny_qwen3(root / "model", corpus), data


def cfg(qwen3, **extra) -> SFTConfig:
    model, data = qwen3
    c = {"model": str(model), "data": str(data), "epochs": 1, "max_steps": 1, "dtype": "fp32", "max_len": 512,
         "batch_size": 4, "pack": False, "report_to": "none", "save_every": 1,
         "optim": {"lr": 1e-3, "warmup_steps": 0, "micro_batch": 2}}
    c.update(extra)
    return from_dict(SFTConfig, c)


def runs(mask) -> list[tuple[int, int]]:
    out, start = [], None
    for t, m in enumerate(list(mask) + [0]):
        if m and start is None:
            start = t
        elif not m and start is not None:
            out.append((start, t))
            start = None
    return out


def test_own_template_refuses_rewritten_reasoning(tmp_path, qwen3):
    with pytest.raises(DataError, match="chat_template=verbatim") as err:
        SFTTrainer(cfg(qwen3, chat_template="own"), tmp_path)
    assert "4 bad row(s)" in str(err.value)


def test_verbatim_trains_on_exact_tokens_and_checkpoint_renders_as_trained(tmp_path, qwen3):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t = SFTTrainer(cfg(qwen3, chat_template="verbatim"), tmp_path)
    tok = t.tokenizer
    assert t.chat_template == "verbatim" and tok.chat_template == template.VERBATIM
    assert t.stats.examples == len(ROWS)
    for ex, row in zip(t.examples, ROWS):  # unpacked, file order
        answers = [m["content"] for m in row["messages"] if m["role"] == "assistant"]
        got = [list(ex.ids[a:b]) for a, b in runs(ex.mask)]
        assert got == [tok.encode(c + "<|im_end|>", add_special_tokens=False) for c in answers]
    hist = t.train(progress=False)
    assert len(hist) == 1 and torch.isfinite(torch.tensor(hist[0]["loss"]))

    ckpt = tmp_path / "checkpoints" / "step-1"
    plain = AutoTokenizer.from_pretrained(ckpt)
    model = AutoModelForCausalLM.from_pretrained(ckpt)
    q = question(3, 2)
    text = plain.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True, tokenize=False)
    trained = tok.apply_chat_template(ROWS[2]["messages"][:2], add_generation_prompt=True, tokenize=False)
    assert text == trained + prompts.THINK_PREFILL  # R1 format detected and baked on the verbatim template
    ids = plain.encode(text, add_special_tokens=False)
    ex = t.examples[2]
    prompt_len = runs(ex.mask)[0][0]
    assert ids[:prompt_len] == list(ex.ids[:prompt_len]) == tok.encode(trained, add_special_tokens=False)
    assert ids == list(ex.ids[:len(ids)])  # the pre-fill is the start of the trained target
    trained_weights = t.inner_model().state_dict()
    assert all(torch.equal(p, trained_weights[n]) for n, p in model.state_dict().items())
    assert model(torch.tensor([ids])).logits.shape == (1, len(ids), len(plain))


def test_auto_switches_to_verbatim_with_a_notice(tmp_path, qwen3, caplog):
    with caplog.at_level(logging.WARNING, logger="reasonlab.train.template"):
        t = SFTTrainer(cfg(qwen3), tmp_path)
    notices = [r.getMessage() for r in caplog.records if r.name == "reasonlab.train.template"]
    assert len(notices) == 1 and notices[0].startswith("chat_template=auto:") and "\n" not in notices[0]
    assert t.chat_template == "verbatim" and t.tokenizer.chat_template == template.VERBATIM
    assert json.loads((tmp_path / "data_stats.json").read_text())["chat_template"] == "verbatim"
    assert t.stats.examples == len(ROWS)


def test_verbatim_needs_chatml_tokens_and_option_is_checked(qwen3):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    bare = Tokenizer(models.BPE())
    bare.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok = PreTrainedTokenizerFast(tokenizer_object=bare, eos_token="</s>")
    tok.chat_template = "{% for m in messages %}{{ m['content'] }}</s>{% endfor %}"
    with pytest.raises(ConfigError, match="chat_template=own"):
        template.select(tok, "verbatim")
    assert template.select(tok, "auto") == "own" and template.select(tok, "own") == "own"
    assert template.select(qwen3_tokenizer(["x"]), "own") == "own"
    with pytest.raises(ConfigError, match="chat_template"):
        cfg(qwen3, chat_template="chatml").check()
