"""The ``transformers`` backend (plain ``model.generate`` through the checkpoint's own chat
template): its greedy text equals our fast sampler's on the same prompts, the template's open
``<think>`` is counted as written, and a checkpoint whose template bakes the R1 prompt in is
answered from a bare user turn exactly as from the explicit R1 prompt."""

from reasonlab.backends.factory import make_backend
from reasonlab.backends.transformers_plain import template_prefill
from reasonlab.types import SamplingParams

GREEDY = SamplingParams(n=1, temperature=0.0, max_new_tokens=12, seed=0)


def test_greedy_text_matches_the_fast_sampler(tiny_dir):
    prompts = [[{"role": "user", "content": q}] for q in ("What is 3 + 4?", "What is 12 - 5? Think first.")]
    plain = make_backend("transformers", str(tiny_dir)).generate(prompts, GREEDY)
    ours = make_backend("hf", str(tiny_dir), dtype="fp32").generate(prompts, GREEDY)
    assert [c[0].text for c in plain] == [c[0].text for c in ours]
    assert [c[0].token_ids for c in plain] == [c[0].token_ids for c in ours]


def test_sampling_gives_n_completions_per_prompt(tiny_dir):
    out = make_backend("transformers", str(tiny_dir)).generate(
        [[{"role": "user", "content": "What is 1 + 1?"}]], SamplingParams(n=3, temperature=1.0, max_new_tokens=4, seed=1))
    assert len(out) == 1 and len(out[0]) == 3 and all(len(c.token_ids) <= 4 for c in out[0])


def test_template_prefill_is_the_open_think_after_the_last_message():
    user = [{"role": "user", "content": "What is 2 + 2?"}]
    assert template_prefill("<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n<|im_start|>assistant\n<think>\n", user) \
        == "<think>\n"
    assert template_prefill("<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n<|im_start|>assistant\n", user) == ""
    closed = "user\nWhat is 2 + 2?\nassistant\n<think>\n\n</think>\n\n"  # a template that turns thinking off
    assert template_prefill(closed, user) == ""
    assert template_prefill("anything <think>\n", user + [{"role": "assistant", "content": "<think>\n"}]) == ""


def test_a_baked_template_answers_a_bare_user_turn_like_the_r1_prompt(tmp_path, tiny_dir):
    """An SFT/GRPO checkpoint carries its prompt in its template: plain transformers given only
    the question must see the same tokens as our sampler given the full R1 prompt."""
    import shutil

    from transformers import AutoTokenizer

    from reasonlab import prompts
    from reasonlab.train.template import apply
    from reasonlab.types import Problem

    model = tmp_path / "baked"
    shutil.copytree(tiny_dir, model)
    tok = AutoTokenizer.from_pretrained(model)
    apply(tok, "r1")
    tok.save_pretrained(model)
    p = Problem(id="x", question="What is 7 - 9?", answer="-2")
    plain = make_backend("transformers", str(model)).generate([prompts.build(p, "plain")], GREEDY)[0][0]
    ours = make_backend("hf", str(model), dtype="fp32").generate([prompts.build(p, "r1")], GREEDY)[0][0]
    assert plain.token_ids == ours.token_ids
    assert plain.text == prompts.THINK_PREFILL + ours.text
