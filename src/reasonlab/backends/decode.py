"""The batched decode loop over ``FastLlama``: one prefill per unique prompt, n samples each.

Prompts are left-padded to a common length Tp; the KV cache holds Tp + max_new columns. After
the prefill of P prompts, the cache and last logits are expanded to B = sum(counts) rows, so n
samples share one prefill. Finished rows are dropped from the batch (the cache compacted) once
at most half the rows are still running, so long tails do not pay for finished rows.
"""

from __future__ import annotations

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


@torch.inference_mode()
def decode(fast: FastLlama, prompts: list[list[int]], counts: list[int], params: SamplingParams,
           eos_ids: set[int], stopper: StopChecker, generator: torch.Generator | None,
           ignore_eos: bool = False) -> list[tuple[list[int], list[float], str]]:
    """Return per row (token ids, logprobs, finish reason), rows ordered prompt by prompt."""
    dev = fast.embed.device
    P, Tp = len(prompts), max(len(p) for p in prompts)
    max_new = params.max_new_tokens
    if Tp + max_new > fast.max_pos:
        raise ValueError(f"prompt ({Tp}) + max_new_tokens ({max_new}) exceeds the model's "
                         f"{fast.max_pos} positions")
    ids = torch.zeros(P, Tp, dtype=torch.long, device=dev)
    valid = torch.zeros(P, Tp, dtype=torch.bool, device=dev)
    for i, p in enumerate(prompts):
        ids[i, Tp - len(p):] = torch.tensor(p, device=dev)
        valid[i, Tp - len(p):] = True
    pos = (valid.long().cumsum(-1) - 1).clamp(min=0)
    causal = torch.ones(Tp, Tp, dtype=torch.bool, device=dev).tril()
    mask = (causal[None] & valid[:, None, :]) | torch.eye(Tp, dtype=torch.bool, device=dev)[None]
    kc, vc = fast.new_cache(P, Tp)
    logits = fast.forward(ids, pos, (kc, vc), 0, mask[:, None])

    rep = torch.tensor(counts, device=dev)
    B = int(rep.sum())
    cache = fast.new_cache(B, Tp + max_new)
    cache[0][:, :, :, :Tp] = kc.repeat_interleave(rep, dim=1)
    cache[1][:, :, :, :Tp] = vc.repeat_interleave(rep, dim=1)
    del kc, vc
    keys_ok = torch.ones(B, Tp + max_new, dtype=torch.bool, device=dev)
    keys_ok[:, :Tp] = valid.repeat_interleave(rep, dim=0)
    next_pos = (pos[:, -1] + 1).repeat_interleave(rep)
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
        mask = keys_ok[:, None, None, :col + 1]
        logits = fast.forward(tok[:, None], next_pos[:, None], cache, col, mask)
        next_pos = next_pos + 1
    return out.results()
