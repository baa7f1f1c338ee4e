"""Token sampling from logits: greedy, temperature, top-p, with the sampled token's log-prob.

The returned log-prob is under the distribution actually sampled from: logits / temperature,
top-p-truncated and renormalised. For greedy decoding (temperature 0) it is under the
untempered softmax. Trainers recompute log-probs under the policy themselves; these are for
search scorers, importance weights of off-policy engines, and inspection.
"""

from __future__ import annotations

import torch


def top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Mask (to -inf) tokens outside the smallest set whose probability mass reaches top_p."""
    if top_p >= 1.0:
        return logits
    sorted_logits, idx = logits.sort(dim=-1, descending=True)
    probs = sorted_logits.softmax(-1)
    cum = probs.cumsum(-1)
    remove = cum - probs > top_p  # keep the token that crosses the threshold
    sorted_logits = sorted_logits.masked_fill(remove, float("-inf"))
    return torch.empty_like(logits).scatter_(-1, idx, sorted_logits)


def sample(logits: torch.Tensor, temperature: float, top_p: float,
           generator: torch.Generator | None, block: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """logits (B, V) float32 -> (tokens (B,), logprobs (B,)).

    Inverse-CDF sampling with one uniform per row, in two levels: pick a block of ``block``
    tokens by the cumulative mass of the blocks, then the token inside it. (A cumulative sum over
    the whole vocabulary runs serially along each row and cost more than the softmax; an
    exponential race needs B x V random numbers, ~20 ms a step at B=32 with a seeded generator.)
    Only tokens with positive probability can be drawn.
    """
    if temperature <= 0:
        logp = torch.log_softmax(logits, -1)
        tok = logits.argmax(-1)
        return tok, logp.gather(-1, tok[:, None]).squeeze(-1)
    z = logits if temperature == 1.0 else logits / temperature
    p = torch.softmax(top_p_filter(z, top_p), -1)
    B, V = p.shape
    nb = -(-V // block)
    blocks = torch.nn.functional.pad(p, (0, nb * block - V)).view(B, nb, block)
    mass = blocks.sum(-1)  # (B, nb)
    cum = mass.cumsum(-1)
    tiny = torch.finfo(p.dtype).tiny
    # u in (0, total]: searchsorted (left) then returns the first index whose cumulative mass
    # reaches u, which always carries mass of its own
    u = (torch.rand(B, 1, generator=generator, device=p.device) * cum[:, -1:]).clamp_(min=tiny)
    b = torch.searchsorted(cum, u.clamp(max=cum[:, -1:])).clamp_(max=nb - 1)
    inside = blocks.gather(1, b[:, :, None].expand(B, 1, block)).squeeze(1).cumsum(-1)  # (B, block)
    rest = (u - (cum.gather(-1, b) - mass.gather(-1, b))).clamp_(min=tiny)
    j = torch.searchsorted(inside, rest.clamp(max=inside[:, -1:])).clamp_(max=block - 1)
    tok = (b * block + j).squeeze(-1)
    return tok, p.gather(-1, tok[:, None]).squeeze(-1).log()
