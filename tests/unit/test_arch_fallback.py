"""Architectures the fast forward does not implement: a one-line warning naming them, then
transformers' own forward, batched — never a silently different model; ``fast=True`` cannot
skip the check."""

import warnings

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, Gemma3ForCausalLM, Gemma3TextConfig, LlamaConfig, LlamaForCausalLM

from reasonlab.backends.fast_llama import fast_plan
from reasonlab.backends.hf import HFGenerator
from reasonlab.models import load_tokenizer
from reasonlab.types import SamplingParams

PROMPTS = ["What is 2+3?", [{"role": "user", "content": "Hello there, how are you doing today my friend?"}],
           [{"role": "user", "content": "Hi"}]]


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer("smollm2-135m")


def gpt2(vocab: int):
    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_embd=32, n_layer=2, n_head=2, n_positions=256)).eval()


def test_unknown_architecture_warns_once_in_one_line_and_samples_exactly_batched(tok):
    model = gpt2(len(tok))
    with pytest.warns(UserWarning) as caught:
        gen = HFGenerator(model, tok, dtype="fp32")
    [w] = [w for w in caught if "hf backend" in str(w.message)]
    assert "gpt2" in str(w.message) and "\n" not in str(w.message)
    calls = []
    model.register_forward_pre_hook(lambda *a: calls.append(1))
    out = gen.generate(PROMPTS, SamplingParams(n=2, temperature=0, max_new_tokens=8))
    assert len(calls) <= 8  # one batched forward per step for all 6 rows, not one per prompt
    for prompt, comps in zip(PROMPTS, out):
        ids = torch.tensor([gen.encode(prompt)])
        with torch.no_grad():
            ref = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=8, do_sample=False,
                                 eos_token_id=tok.eos_token_id, pad_token_id=0)[0, ids.shape[1]:].tolist()
            full = torch.tensor([ids[0].tolist() + list(comps[0].token_ids)])
            logp = torch.log_softmax(model(full).logits[0, ids.shape[1] - 1:-1].float(), -1)
        assert [c.token_ids for c in comps] == [tuple(ref)] * 2
        expected = logp.gather(-1, full[0, ids.shape[1]:, None]).squeeze(-1)
        assert torch.allclose(torch.tensor(comps[0].logprobs), expected, atol=1e-4)


def test_fast_true_cannot_bypass_the_check(tok):
    with pytest.raises(ValueError, match="gpt2"):
        HFGenerator(gpt2(len(tok)), tok, dtype="fp32", fast=True)


def test_fast_false_is_quiet(tok):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not HFGenerator(gpt2(len(tok)), tok, dtype="fp32", fast=False).use_fast


@pytest.mark.parametrize("model, reason", [
    (lambda: LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                          num_attention_heads=2, rope_scaling={"rope_type": "dynamic", "factor": 2.0})),
     "rope_type 'dynamic'"),
    (lambda: LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                          num_attention_heads=2, hidden_act="gelu")), "activation 'gelu'"),
    (lambda: Gemma3ForCausalLM(Gemma3TextConfig(vocab_size=64, hidden_size=32, intermediate_size=64,
                                                num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                                                head_dim=16, attn_logit_softcapping=50.0)), "attn_logit_softcapping"),
], ids=["llama-dynamic-rope", "llama-gelu", "gemma3-attn-softcap"])
def test_known_family_with_an_unimplemented_setting_is_refused(model, reason):
    arch, why = fast_plan(model())
    assert arch is None and reason in why
