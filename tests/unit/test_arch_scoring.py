"""The PRM/ORM scorer reads the fast forward's hidden states, and its scores equal the plain
(transformers) forward's: fp32, |difference| <= 1e-5 on sigmoid scores."""

import pytest
import torch
from tiny_archs import build

from reasonlab.models import load_tokenizer
from reasonlab.search.scorers import RewardModelScorer, ValueModel, encode_steps, pad, split_steps
from reasonlab.types import Problem

TEXTS = ["a\n\nb", "a much longer first step with many words\n\nand a second\n\n<answer>7</answer>", "7",
         "short\n\n<answer>1</answer>"]


@pytest.mark.parametrize("family", ["smollm2", "qwen3", "gemma3"])
def test_scores_equal_the_plain_forward(family):
    tok = load_tokenizer("smollm2-135m")
    lm = build(family)
    lm.resize_token_embeddings(len(tok))  # the families' test vocab is tiny; the tokenizer's is not
    model = ValueModel(lm, "prm")
    torch.nn.init.normal_(model.head.weight)
    scorer = RewardModelScorer(model, tok, batch_size=4)
    assert scorer.fast is not None and scorer.fast.arch.name == lm.config.model_type
    p = Problem("arith/x", "What is 3 + 4?", "7")
    got = scorer.step_scores([p] * 4, TEXTS)
    encoded = [encode_steps(tok, p, split_steps(t)) for t in TEXTS]
    ids, attn = pad([e[0] for e in encoded], tok.pad_token_id or 0)
    with torch.no_grad():
        plain = torch.sigmoid(model(ids, attn))
    for (_, ends), row, scores in zip(encoded, plain, got):
        assert torch.allclose(torch.tensor(scores), row[ends], atol=1e-5)
