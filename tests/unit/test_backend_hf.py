"""The fast sampler must match the reference model exactly (fp32) and follow weight updates."""

import pytest
import torch

from reasonlab.backends.hf import HFGenerator
from reasonlab.models import attach_lora, LoraConfig, load_tokenizer, tiny_llama
from reasonlab.types import SamplingParams


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer("smollm2-135m")


@pytest.fixture
def model(tok):
    m = tiny_llama(vocab_size=len(tok), hidden=64, layers=2)
    m.generation_config.eos_token_id = tok.eos_token_id
    return m


PROMPTS = ["What is 2+3?", [{"role": "user", "content": "Hello there, how are you doing today my friend?"}],
           [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "<think>\n"}]]


@pytest.mark.parametrize("fast", [True, False])
def test_greedy_matches_transformers_generate_and_logprobs_match_forward(model, tok, fast):
    gen = HFGenerator(model, tok, dtype="fp32", fast=fast)
    out = gen.generate(PROMPTS, SamplingParams(n=2, temperature=0, max_new_tokens=10))
    for prompt, comps in zip(PROMPTS, out):
        ids = torch.tensor([gen.encode(prompt)])
        ref = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=10, do_sample=False,
                             eos_token_id=tok.eos_token_id, pad_token_id=0)[0, ids.shape[1]:].tolist()
        assert list(comps[0].token_ids) == ref[:len(comps[0].token_ids)]
        assert comps[0].token_ids == comps[1].token_ids  # greedy: both samples equal
        full = torch.tensor([list(comps[0].prompt_token_ids) + list(comps[0].token_ids)])
        with torch.no_grad():
            lp = torch.log_softmax(model(full).logits[0, ids.shape[1] - 1:-1].float(), -1)
        expected = lp.gather(-1, full[0, ids.shape[1]:, None]).squeeze(-1)
        assert torch.allclose(expected, torch.tensor(comps[0].logprobs), atol=1e-4)


def test_sampling_is_seeded_and_n_samples_differ(model, tok):
    gen = HFGenerator(model, tok, dtype="fp32")
    p = SamplingParams(n=4, temperature=1.0, max_new_tokens=8, seed=5)
    a, b = gen.generate(PROMPTS[:1], p), gen.generate(PROMPTS[:1], p)
    assert [c.token_ids for c in a[0]] == [c.token_ids for c in b[0]]
    assert len({c.token_ids for c in a[0]}) > 1
    assert all(c.num_tokens == 8 and c.finish_reason == "length" for c in a[0])


def test_chunking_keeps_order_and_counts(model, tok):
    gen = HFGenerator(model, tok, dtype="fp32", max_batch=3)
    out = gen.generate(PROMPTS, SamplingParams(n=4, temperature=0, max_new_tokens=5))
    single = [HFGenerator(model, tok, dtype="fp32").generate([p], SamplingParams(n=1, temperature=0, max_new_tokens=5))[0][0]
              for p in PROMPTS]
    assert [len(o) for o in out] == [4, 4, 4]
    assert [o[3].token_ids for o in out] == [s.token_ids for s in single]


def test_stop_strings_cut_text_and_set_reason(model, tok):
    gen = HFGenerator(model, tok, dtype="fp32")
    free = gen.generate(PROMPTS[:1], SamplingParams(n=1, temperature=0, max_new_tokens=12))[0][0]
    stop = free.text[3:5]
    assert stop.strip(), "the random model should write something"
    cut = gen.generate(PROMPTS[:1], SamplingParams(n=1, temperature=0, max_new_tokens=12, stop=(stop,)))[0][0]
    assert cut.finish_reason == "stop" and cut.text.endswith(stop) and stop not in cut.text[:-len(stop)]
    assert cut.num_tokens < free.num_tokens


def test_sync_weights_follows_updates_and_lora(model, tok):
    peft = attach_lora(model, LoraConfig(r=4, alpha=8))
    gen = HFGenerator(peft, tok, dtype="fp32")
    p = SamplingParams(n=1, temperature=0, max_new_tokens=8)
    before = gen.generate(PROMPTS[:1], p)[0][0].token_ids
    with torch.no_grad():
        for name, param in peft.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    assert gen.generate(PROMPTS[:1], p)[0][0].token_ids == before  # stale copy until synced
    gen.sync_weights()
    after = gen.generate(PROMPTS[:1], p)[0][0].token_ids
    ids = torch.tensor([gen.encode(PROMPTS[0])])
    with torch.no_grad():
        ref = peft.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=8,
                            do_sample=False, eos_token_id=tok.eos_token_id, pad_token_id=0)[0, ids.shape[1]:]
    assert after != before and list(after) == ref.tolist()[:len(after)]


def test_samples_from_the_published_weights_not_the_live_module(model, tok):
    """The fast path loads what ``weights()`` hands it (the trainer's publisher), as ``vllm``
    does: handed another model's pairs, it samples that model's text, whatever the live module."""
    from reasonlab.models import full_weights

    other = tiny_llama(vocab_size=len(tok), hidden=64, layers=2, seed=11)
    p = SamplingParams(n=1, temperature=0, max_new_tokens=8)
    own = HFGenerator(model, tok, dtype="fp32").generate(PROMPTS[:1], p)[0][0].token_ids
    theirs = HFGenerator(other, tok, dtype="fp32").generate(PROMPTS[:1], p)[0][0].token_ids
    handed = HFGenerator(model, tok, dtype="fp32", weights=lambda: full_weights(other))
    assert own != theirs
    assert handed.generate(PROMPTS[:1], p)[0][0].token_ids == theirs
    missing = HFGenerator(model, tok, dtype="fp32", weights=lambda: [])
    with pytest.raises(KeyError, match="model.layers.0.input_layernorm.weight"):
        missing.sync_weights()


def test_bf16_sampler_agrees_with_fp32_mostly(model, tok):
    p = SamplingParams(n=1, temperature=0, max_new_tokens=6)
    a = HFGenerator(model, tok, dtype="fp32").generate(PROMPTS[:1], p)[0][0].token_ids
    b = HFGenerator(model, tok, dtype="bf16").generate(PROMPTS[:1], p)[0][0].token_ids
    assert a[:2] == b[:2]


@pytest.mark.parametrize("bias", [False, True])
def test_packed_linears_match_plain_matmuls(tok, bias):
    """The oneDNN pre-packed path (CPU default) and the plain-matmul path (GPU, other builds)
    compute the same forward, with and without a qkv bias (qwen2)."""
    from reasonlab.backends.fast_llama import FastLlama, can_pack

    if not can_pack(torch.device("cpu")):
        pytest.skip("this torch build has no oneDNN linear ops")
    m = tiny_llama(vocab_size=len(tok), hidden=64, layers=2)
    if bias:
        for blk in m.model.layers:
            for proj in (blk.self_attn.q_proj, blk.self_attn.k_proj, blk.self_attn.v_proj):
                proj.bias = torch.nn.Parameter(torch.randn(proj.out_features) * 0.1)
    ids = torch.randint(3, len(tok), (3, 7))
    pos = torch.arange(7).expand(3, 7)
    mask = torch.ones(7, 7, dtype=torch.bool).tril()[None, None].expand(3, 1, 7, 7)
    logits = []
    for pack in (True, False):
        fast = FastLlama.from_hf(m, torch.float32, pack=pack)
        assert all(layer.qkv.packed is pack for layer in fast.layers)
        logits.append(fast.forward(ids, pos, fast.new_cache(3, 7), 0, mask))
    assert torch.allclose(logits[0], logits[1], atol=1e-4)
    if not bias:  # and both match the HF model itself
        assert torch.allclose(logits[0], m(ids).logits[:, -1].float(), atol=1e-4)
