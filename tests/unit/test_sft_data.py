"""SFT data: R1 normalisation, template-independent masks, bad rows, length, order, packing."""

from __future__ import annotations

import json

import pytest
import torch

from reasonlab.models import tiny_llama
from reasonlab.errors import DataError
from reasonlab.train.sft_data import (IGNORE, collate, epoch_order, load_sft_data, n_targets,
                                      plan_batches)
from reasonlab.train.sft_loss import sft_loss
from reasonlab.train.sft_rows import r1_content

SPECIALS = ["<pad>", "<s>", "</s>", "<unk>", "<|im_start|>", "<|im_end|>", "<|begin_of_text|>",
            "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]

CHATML = ("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
# strips <think>…</think> from assistant turns that are not the last message (Qwen3/R1 style)
STRIP_HISTORY = ("{% for m in messages %}{% set c = m.content %}"
                 "{% if m.role == 'assistant' and not loop.last and '</think>' in c %}"
                 "{% set c = c.split('</think>')[-1].lstrip() %}{% endif %}"
                 "<|im_start|>{{ m.role }}\n{{ c }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
PREFILL = ("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
           "{% if add_generation_prompt %}<|im_start|>assistant\n<think>\n{% endif %}")
LLAMA3 = ("<|begin_of_text|>{% for m in messages %}<|start_header_id|>{{ m.role }}<|end_header_id|>\n\n"
          "{{ m.content }}<|eot_id|>{% endfor %}"
          "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}")
# DeepSeek-R1 style: drops the reasoning of every assistant turn, the last one included
STRIP_ALL = ("{% for m in messages %}{% set c = m.content %}{% if m.role == 'assistant' %}"
             "{% set c = c.split('</think>')[-1].lstrip() %}{% endif %}"
             "<|im_start|>{{ m.role }}\n{{ c }}<|im_end|>\n{% endfor %}"
             "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
NO_EOT = ("{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"
          "{% if add_generation_prompt %}assistant:{% endif %}")


def make_tokenizer(template: str):
    """Character-level fast tokenizer (106 ids, fits tiny_llama's 128) with chat special tokens."""
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    chars = [chr(i) for i in range(32, 127)] + ["\n"]
    vocab = {t: i for i, t in enumerate(SPECIALS + chars)}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    core.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>",
                                  pad_token="<pad>", unk_token="<unk>")
    tok.add_special_tokens({"additional_special_tokens": SPECIALS[4:]})
    tok.chat_template = template
    return tok


def write(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def target_texts(tok, ex):
    """Decoded runs of consecutive target tokens, and the prompt text before the first one."""
    runs, cur = [], []
    for i, m in zip(ex.ids, ex.mask):
        if m:
            cur.append(i)
        elif cur:
            runs.append(tok.decode(cur))
            cur = []
    if cur:
        runs.append(tok.decode(cur))
    return runs, tok.decode(list(ex.ids[:ex.mask.index(1)]))


R1_TARGET = "<think>\nadd 2 and 2\n</think>\n<answer>4</answer>"
ONE_TURN = {"messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "2+2?"},
                         {"role": "assistant", "content": "<think> add 2 and 2 </think>  <answer>4</answer>"}],
            "problem_id": 7, "provenance": {"x": 1}}
TWO_TURNS = {"messages": [{"role": "user", "content": "2+2?"},
                          {"role": "assistant", "content": "<think>add 2 and 2</think><answer>4</answer>"},
                          {"role": "user", "content": "and 3+3?"},
                          {"role": "assistant", "content": "<answer>6</answer>",
                           "reasoning_content": "add 3 and 3"}]}


def test_r1_normalisation_inline_field_and_missing_open_tag_agree():
    assert r1_content("<think>\n add 2 and 2\n\n</think>\n\n<answer>4</answer> ", None, "m") == R1_TARGET
    assert r1_content("<answer>4</answer>", "  add 2 and 2 ", "m") == R1_TARGET
    assert r1_content("add 2 and 2</think><answer>4</answer>", None, "m") == R1_TARGET  # pre-filled <think>
    assert r1_content("  just an answer ", None, "m") == "just an answer"
    for content, reasoning, reason in [("<think>x</think>y", "x", "reasoning given twice"),
                                       ("a <think>x</think>y", None, "text before <think>"),
                                       ("<think>x", None, "never closed"),
                                       ("<think>x</think>  ", None, "empty answer")]:
        with pytest.raises(ValueError, match=reason):
            r1_content(content, reasoning, "m")


def test_chatml_mask_is_whole_r1_turn_plus_end_of_turn(tmp_path):
    tok = make_tokenizer(CHATML)
    (ex,), stats = load_sft_data(write(tmp_path / "d.jsonl", [ONE_TURN]), tok, max_len=512)
    runs, prompt = target_texts(tok, ex)
    assert runs == [R1_TARGET + "<|im_end|>"]  # no trailing "\n": that starts the next turn
    assert prompt.endswith("2+2?<|im_end|>\n<|im_start|>assistant\n")
    assert tok.decode(list(ex.ids)) == prompt + runs[0]
    assert ex.source == f"{tmp_path / 'd.jsonl'}:1"
    assert stats.examples == 1 and stats.target_tokens == sum(ex.mask) == len(tok.encode(runs[0]))


def test_chatml_multi_turn_masks_every_assistant_turn_and_not_the_next_header(tmp_path):
    tok = make_tokenizer(CHATML)
    (ex,), _ = load_sft_data(write(tmp_path / "d.jsonl", [TWO_TURNS]), tok, max_len=512)
    runs, _ = target_texts(tok, ex)
    assert runs == [R1_TARGET + "<|im_end|>",
                    "<think>\nadd 3 and 3\n</think>\n<answer>6</answer><|im_end|>"]


def test_prompt_completion_rows_train_only_the_completion(tmp_path):
    tok = make_tokenizer(CHATML)
    rows = [{"prompt": "2+2?", "completion": "<answer>4</answer>", "reasoning_content": "add 2 and 2"},
            {"prompt": TWO_TURNS["messages"][:3], "completion": [{"role": "assistant", "content": "<think>add 3 and 3</think>6"}]}]
    (a, b), _ = load_sft_data(write(tmp_path / "d.jsonl", rows), tok, max_len=512)
    assert target_texts(tok, a)[0] == [R1_TARGET + "<|im_end|>"]
    runs, prompt = target_texts(tok, b)
    assert runs == ["<think>\nadd 3 and 3\n</think>\n6<|im_end|>"]
    assert "<answer>4</answer>" in prompt  # the assistant turn inside the prompt is context only


def test_template_that_strips_think_from_history(tmp_path):
    tok = make_tokenizer(STRIP_HISTORY)
    no_history_reasoning = {"messages": [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"},
                                         {"role": "user", "content": "q2"},
                                         {"role": "assistant", "content": "<think>r2</think>a2"}]}
    path = write(tmp_path / "d.jsonl", [ONE_TURN, no_history_reasoning])
    examples, _ = load_sft_data(path, tok, max_len=512)
    assert target_texts(tok, examples[0])[0] == [R1_TARGET + "<|im_end|>"]
    assert target_texts(tok, examples[1])[0] == ["a1<|im_end|>", "<think>\nr2\n</think>\na2<|im_end|>"]
    bad = write(tmp_path / "bad.jsonl", [ONE_TURN, TWO_TURNS])
    with pytest.raises(DataError, match=rf"{bad}:2: messages\[1\]: .*drops or rewrites"):
        load_sft_data(bad, tok, max_len=512)


def test_template_that_drops_reasoning_of_the_last_turn_is_refused(tmp_path):
    path = write(tmp_path / "d.jsonl", [ONE_TURN])
    with pytest.raises(DataError, match=rf"{path}:1: messages\[2\]: the assistant content does not appear verbatim"):
        load_sft_data(path, make_tokenizer(STRIP_ALL), max_len=512)


def test_prefilled_think_stays_prompt_and_the_rest_is_target(tmp_path):
    tok = make_tokenizer(PREFILL)
    (ex,), _ = load_sft_data(write(tmp_path / "d.jsonl", [ONE_TURN]), tok, max_len=512)
    runs, prompt = target_texts(tok, ex)
    assert prompt.endswith("<|im_start|>assistant\n<think>\n")
    assert runs == ["add 2 and 2\n</think>\n<answer>4</answer><|im_end|>"]
    no_reasoning = write(tmp_path / "n.jsonl", [{"prompt": "2+2?", "completion": "4"}])
    with pytest.raises(DataError, match=rf"{no_reasoning}:1: .*does not continue the generation prompt"):
        load_sft_data(no_reasoning, tok, max_len=512)


def test_llama3_like_template(tmp_path):
    tok = make_tokenizer(LLAMA3)
    (ex,), _ = load_sft_data(write(tmp_path / "d.jsonl", [TWO_TURNS]), tok, max_len=512)
    runs, prompt = target_texts(tok, ex)
    assert prompt.startswith("<|begin_of_text|>") and prompt.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    assert runs == [R1_TARGET + "<|eot_id|>", "<think>\nadd 3 and 3\n</think>\n<answer>6</answer><|eot_id|>"]


def test_template_without_end_of_turn_marker_is_refused(tmp_path):
    path = write(tmp_path / "d.jsonl", [ONE_TURN])
    with pytest.raises(DataError, match=rf"{path}:1: .*no end-of-turn marker"):
        load_sft_data(path, make_tokenizer(NO_EOT), max_len=512)


BAD_ROWS = ['{"messages": [',
            {"messages": [{"content": "hi"}, {"role": "assistant", "content": "x"}]},
            {"messages": [{"role": "user"}, {"role": "assistant", "content": "x"}]},
            {"messages": [{"role": "user", "content": "hi"}]},
            {"prompt": "hi", "completion": "  "},
            {"prompt": "hi", "completion": "<think>r</think>"},
            '[1, 2]']
REASONS = ["malformed JSON", "messages[0]: missing role", "messages[0]: missing content",
           "conversation has no assistant turn", "empty completion", "empty answer after </think>", "expected a JSON object"]


def test_bad_rows_fail_before_training_naming_file_and_line(tmp_path):
    path = write(tmp_path / "d.jsonl", [ONE_TURN] + BAD_ROWS)
    with pytest.raises(DataError) as err:
        load_sft_data(path, make_tokenizer(CHATML), max_len=512)
    msg = str(err.value)
    assert msg.startswith(f"7 bad row(s) of 8 in {path}") and "\n" not in msg
    for line, reason in zip(range(2, 7), REASONS[:5]):  # the first five are listed
        assert f"{path}:{line}: {reason}" in msg
    assert f"{path}:7:" not in msg


def test_bad_rows_skip_counts_them(tmp_path):
    path = write(tmp_path / "d.jsonl", [ONE_TURN] + BAD_ROWS + [TWO_TURNS])
    examples, stats = load_sft_data(path, make_tokenizer(CHATML), max_len=512, on_bad_rows="skip")
    assert [e.source for e in examples] == [f"{path}:1", f"{path}:9"]
    assert (stats.rows, stats.bad_rows, stats.examples) == (9, 7, 2)
    assert all(s.startswith(f"{path}:{i}: {r}") for s, i, r in zip(stats.bad_row_samples, range(2, 7), REASONS))
    assert len(stats.bad_row_samples) == 5
    assert stats.metrics()["bad_rows"] == 7


def test_directory_reads_jsonl_files_in_name_order(tmp_path):
    write(tmp_path / "b.jsonl", [TWO_TURNS])
    write(tmp_path / "a.jsonl", [ONE_TURN])
    (tmp_path / "notes.txt").write_text("not data")
    examples, _ = load_sft_data(tmp_path, make_tokenizer(CHATML), max_len=512)
    assert [e.source for e in examples] == [f"{tmp_path / 'a.jsonl'}:1", f"{tmp_path / 'b.jsonl'}:1"]


def test_too_long_is_dropped_and_counted_and_huge_records_are_not_tokenized(tmp_path):
    tok = make_tokenizer(CHATML)
    huge = {"prompt": "x" * (5 << 20), "completion": "<think>r</think>a"}
    path = write(tmp_path / "d.jsonl", [ONE_TURN, huge, TWO_TURNS])
    (full,), _ = load_sft_data(write(tmp_path / "one.jsonl", [TWO_TURNS]), tok, max_len=512)
    calls = []
    encode = tok.encode
    tok.encode = lambda text, **kw: calls.append(len(text)) or encode(text, **kw)
    examples, stats = load_sft_data(path, tok, max_len=len(full) - 1)
    assert max(calls) < 1000  # the 5 MB row never reached the tokenizer
    assert [e.source for e in examples] == [f"{path}:1"]
    assert stats.too_long == 2 and stats.too_long_samples == [f"{path}:2", f"{path}:3"]
    assert stats.truncated == 0


def test_truncate_cuts_from_the_left_and_keeps_the_last_turn_whole(tmp_path):
    tok = make_tokenizer(CHATML)
    path = write(tmp_path / "one.jsonl", [TWO_TURNS])
    (full,), _ = load_sft_data(path, tok, max_len=512)
    runs = target_texts(tok, full)[0]
    starts = [k for k in range(len(full)) if full.mask[k] and not full.mask[k - 1]]  # of the two turns
    for cut, kept in [(5, runs), (starts[0] + 1, runs[1:]), (starts[1], runs[1:])]:
        (ex,), stats = load_sft_data(path, tok, max_len=len(full) - cut, truncate=True)
        assert stats.truncated == 1 and ex.ids == full.ids[cut:]
        assert target_texts(tok, ex)[0] == kept  # a turn that is cut into loses its loss
    with pytest.raises(DataError, match="no usable examples.*1 longer than"):
        load_sft_data(path, tok, max_len=len(full) - starts[1] - 1, truncate=True)


def test_epoch_order_is_a_function_of_seed_and_epoch():
    a = epoch_order(50, seed=3, epoch=0)
    assert a == epoch_order(50, seed=3, epoch=0) and sorted(a) == list(range(50))
    assert a != epoch_order(50, seed=3, epoch=1) and a != epoch_order(50, seed=4, epoch=0)


def test_plan_batches_packs_in_order_within_max_len():
    lengths = [5, 3, 4, 8, 2, 1]
    batches = plan_batches(lengths, [0, 1, 2, 3, 4, 5], rows_per_batch=2, max_len=8, pack=True)
    assert batches == [[[0, 1], [2]], [[3], [4, 5]]]
    assert plan_batches(lengths, [5, 4], 1, 8, pack=False) == [[[5]], [[4]]]


def _examples(tmp_path, tok):
    rows = [ONE_TURN, TWO_TURNS, {"prompt": "7*6?", "completion": "<think>7*6=42</think>42"},
            {"prompt": "1+1?", "completion": "2"}]
    return load_sft_data(write(tmp_path / "d.jsonl", rows), tok, max_len=512)[0]


def test_collate_shifts_targets_within_each_example(tmp_path):
    tok = make_tokenizer(CHATML)
    a, b = _examples(tmp_path, tok)[2:]
    batch = collate([[a, b]], pad_id=0, pad_to_multiple_of=8)
    n = len(a) + len(b)
    assert batch["input_ids"].shape[1] % 8 == 0 and batch["input_ids"][0, n:].eq(0).all()
    assert batch["position_ids"][0, :n].tolist() == list(range(len(a))) + list(range(len(b)))
    tgt = batch["target_ids"][0]
    assert tgt[len(a) - 1] == IGNORE and tgt[n - 1:].eq(IGNORE).all()  # no prediction across examples
    want = [t for ex in (a, b) for t in [ex.ids[k + 1] if ex.mask[k + 1] else IGNORE for k in range(len(ex) - 1)] + [IGNORE]]
    assert tgt[:n].tolist() == want
    assert n_targets(batch) == sum(a.mask) + sum(b.mask) - a.mask[0] - b.mask[0]


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_and_unpacked_loss_and_gradients_agree(tmp_path, attn):
    tok = make_tokenizer(CHATML)
    examples = _examples(tmp_path, tok)
    model = tiny_llama(vocab_size=128)
    model.config._attn_implementation = attn

    def loss_and_grad(batch):
        model.zero_grad()
        loss, n = sft_loss(model, batch)
        loss.backward()
        return loss.item(), n, torch.cat([p.grad.flatten() for p in model.parameters()])

    packed = loss_and_grad(collate([examples[:2], examples[2:]], pad_id=0))
    unpacked = loss_and_grad(collate([[e] for e in examples], pad_id=0))
    assert packed[1] == unpacked[1] > 0
    assert abs(packed[0] - unpacked[0]) < 1e-4 * unpacked[1]
    assert (packed[0] / packed[1] - unpacked[0] / unpacked[1]) == pytest.approx(0, abs=1e-4)
    assert torch.allclose(packed[2], unpacked[2], atol=1e-4, rtol=0)
    # the same packed row without position restarts lets examples attend to each other: the
    # comparison above can fail
    leaky = collate([examples[:2], examples[2:]], pad_id=0)
    leaky["position_ids"] = torch.arange(leaky["input_ids"].shape[1]).expand_as(leaky["input_ids"])
    assert abs(loss_and_grad(leaky)[0] - unpacked[0]) > 1e-3


def test_over_long_lines_and_template_refusals_are_bad_rows(tmp_path):
    picky = CHATML.replace("{% for m in messages %}", "{% for m in messages %}{% if m.role == 'system' %}"
                           "{{ raise_exception('no system role') }}{% endif %}", 1)
    path = write(tmp_path / "d.jsonl", [TWO_TURNS, ONE_TURN, {"prompt": "x" * 300, "completion": "y"}])
    examples, stats = load_sft_data(path, make_tokenizer(picky), max_len=512, on_bad_rows="skip",
                                    max_line_bytes=300)
    assert [e.source for e in examples] == [f"{path}:1"]
    assert stats.bad_row_samples[0].startswith(f"{path}:2: the chat template refuses this conversation")
    assert "no system role" in stats.bad_row_samples[0]
    assert stats.bad_row_samples[1].startswith(f"{path}:3: record of 3")
    assert "over the 300-byte limit" in stats.bad_row_samples[1]
