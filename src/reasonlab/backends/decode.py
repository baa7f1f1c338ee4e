"""The batched decode loop over ``FastLlama``: one prefill per unique prompt, n samples each.

The tokens every prompt starts with (chat header and system prompt: ~75 of ~97 tokens for the
R1 prompt) are prefilled once, in one row, and copied to all prompts; the rest of each prompt is
left-padded after that shared prefix to a common length, so cache columns are
[shared prefix | padding | own suffix | new tokens]. After the prefill of P prompts, the cache
and last logits are expanded to B = sum(counts) rows, so n samples share one prefill. Finished
rows are dropped from the batch (the cache compacted) once at most half the rows are still
running, so long tails do not pay for finished rows.
"""

from __future__ import annotations

import os

import torch

from reasonlab.backends.fast_llama import FastLlama
from reasonlab.backends.sampling import sample
from reasonlab.types import SamplingParams


class StopChecker:
    """Detects stop strings in the decoded tail of each row (strings may span tokens)."""

    def __init__(self, tokenizer, stop: tuple[str, ...]):
        self.tokenizer, self.stop = tokenizer, tuple(s for s in stop if s)
        self.window = max((len(s) for s in self.stop), default=0) + 2

    def hit(self, tokens: list[int]) -> bool:
        if not self.stop:
            return False
        tail = self.tokenizer.decode(tokens[-self.window:], skip_special_tokens=True)
        return any(s in tail for s in self.stop)


class Rows:
    """Per-row tokens, log-probs and finish reasons of a batch being sampled; shared by the fast
    loop here and the generic one (``generic.py``) so both stop rows the same way."""

    def __init__(self, B: int, eos_ids: set[int], stopper: StopChecker, ignore_eos: bool):
        self.eos_ids, self.stopper, self.ignore_eos = eos_ids, stopper, ignore_eos
        self.tokens: list[list[int]] = [[] for _ in range(B)]
        self.logps: list[list[float]] = [[] for _ in range(B)]
        self.reason = ["length"] * B
        self.finished = [False] * B

    def record(self, rows: list[int], tok: torch.Tensor, lp: torch.Tensor) -> None:
        """Append batch row j's token to original row ``rows[j]`` unless that row has finished."""
        for r, t, l in zip(rows, tok.tolist(), lp.tolist()):
            if self.finished[r]:
                continue
            self.tokens[r].append(t)
            self.logps[r].append(l)
            if (t in self.eos_ids and not self.ignore_eos) or self.stopper.hit(self.tokens[r]):
                self.reason[r], self.finished[r] = "stop", True

    def results(self) -> list[tuple[list[int], list[float], str]]:
        return list(zip(self.tokens, self.logps, self.reason))


CHUNK = 32  # cache columns added at a time: attention reads the whole (dense) cache each step


def shared_prefix(fast: FastLlama, prompts: list[list[int]], max_new: int) -> int:
    """How many leading tokens all prompts share and can prefill once: each keeps at least one
    token of its own (its last logit starts sampling), and none when a sliding window could bind,
    since windows are applied on cache columns and the padding gap after the prefix would shift
    them (``FastLlama._group_bias``)."""
    if len(prompts) < 2:
        return 0
    windows = [layer.window for layer in fast.layers if layer.window is not None]
    if windows and min(windows) < max(map(len, prompts)) + max_new:
        return 0
    return min(len(os.path.commonprefix(prompts)), min(map(len, prompts)) - 1)


@torch.inference_mode()
def prefill(fast: FastLlama, prompts: list[list[int]], max_new: int):
    """Run the prompts -> (cache of P rows, last logits (P, V), key validity (P, Tp), RoPE position
    of each prompt's last token (P,)); the shared prefix (``shared_prefix``) runs once."""
    dev = fast.embed.device
    P, C = len(prompts), shared_prefix(fast, prompts, max_new)
    Ts = max(len(p) for p in prompts) - C
    Tp = C + Ts
    if Tp + max_new > fast.max_pos:
        raise ValueError(f"prompt ({Tp}) + max_new_tokens ({max_new}) exceeds the model's "
                         f"{fast.max_pos} positions")
    ids = torch.zeros(P, Ts, dtype=torch.long, device=dev)
    valid = torch.zeros(P, Tp, dtype=torch.bool, device=dev)
    valid[:, :C] = True
    for i, p in enumerate(prompts):
        ids[i, Ts - (len(p) - C):] = torch.tensor(p[C:], device=dev)
        valid[i, Tp - (len(p) - C):] = True
    kc, vc = fast.new_cache(P, Tp)
    if C:
        head = torch.tensor(prompts[0][:C], device=dev)[None]
        causal = torch.ones(C, C, dtype=torch.bool, device=dev).tril()
        fast.forward(head, torch.arange(C, device=dev)[None], (kc[:, :1], vc[:, :1]), 0, causal[None, None])
        for dst, src in zip(fast.columns((kc, vc), C, slice(1, None)), fast.columns((kc, vc), C, slice(0, 1))):
            dst.copy_(src.expand_as(dst))
    pos = (valid.long().cumsum(-1) - 1).clamp(min=0)[:, C:]
    q = torch.arange(C, Tp, device=dev)[:, None]
    cols = torch.arange(Tp, device=dev)[None]
    # a padding query attends to itself only, so its softmax row is never empty
    mask = ((cols <= q)[None] & valid[:, None, :]) | (cols == q)[None]
    logits = fast.forward(ids, pos, (kc, vc), C, mask[:, None])
    return (kc, vc), logits, valid, pos[:, -1]


@torch.inference_mode()
def decode(fast: FastLlama, prompts: list[list[int]], counts: list[int], params: SamplingParams,
           eos_ids: set[int], stopper: StopChecker, generator: torch.Generator | None,
           ignore_eos: bool = False) -> list[tuple[list[int], list[float], str]]:
    """Return per row (token ids, logprobs, finish reason), rows ordered prompt by prompt."""
    dev = fast.embed.device
    max_new = params.max_new_tokens
    (kc, vc), logits, valid, last_pos = prefill(fast, prompts, max_new)
    Tp = valid.shape[1]

    rep = torch.tensor(counts, device=dev)
    B = int(rep.sum())
    cache = fast.new_cache(B, Tp + min(max_new, CHUNK))
    for dst, src in zip(fast.columns(cache, Tp), (kc, vc)):
        dst.copy_(src.repeat_interleave(rep, dim=1))
    del kc, vc
    keys_ok = torch.zeros(B, Tp + max_new, dtype=torch.bool, device=dev)  # set as columns fill
    keys_ok[:, :Tp] = valid.repeat_interleave(rep, dim=0)
    next_pos = (last_pos + 1).repeat_interleave(rep)
    logits = logits.repeat_interleave(rep, dim=0)

    rows = torch.arange(B, device=dev)  # original row index of each live batch row
    out = Rows(B, eos_ids, stopper, ignore_eos)
    for step in range(max_new):
        tok, lp = sample(logits, params.temperature, params.top_p, generator)
        out.record(rows.tolist(), tok, lp)
        if step == max_new - 1:
            break
        live = torch.tensor([not out.finished[r] for r in rows.tolist()], dtype=torch.bool, device=dev)
        if not live.any():
            break
        if int((~live).sum()) * 2 >= len(rows):  # compact: drop finished rows from the batch
            keep = live.nonzero().squeeze(-1)
            cache = (cache[0].index_select(1, keep), cache[1].index_select(1, keep))
            keys_ok, next_pos, rows, tok = keys_ok[keep], next_pos[keep], rows[keep], tok[keep]
        col = Tp + step
        width = fast.width(cache)
        if col == width:  # grow by a chunk: one copy every CHUNK steps
            grown = fast.new_cache(len(rows), min(width + CHUNK, Tp + max_new))
            for dst, src in zip(fast.columns(grown, width), cache):
                dst.copy_(src)
            cache, width = grown, fast.width(grown)
        keys_ok[:, col] = True
        logits = fast.forward(tok[:, None], next_pos[:, None], cache, col, keys_ok[:, None, None, :width])
        next_pos = next_pos + 1
    return out.results()
