"""SFT data for the trainer: rows -> masked examples -> deterministic, packed, collated batches.

Pipeline (each step a pure function, so the trainer can resume at an exact batch):

    examples, stats = load_sft_data(path, tokenizer, max_len)      # fails early on bad rows
    order = epoch_order(len(examples), seed, epoch)                 # same (seed, epoch) -> same order
    batches = plan_batches([len(e) for e in examples], order, rows, max_len, pack=True)
    batch = collate([[examples[i] for i in row] for row in batches[k]], pad_id)
    loss_sum, n = sft_loss(model, batch)                            # train/sft_loss.py

Files (JSONL, JSON, parquet, ``datasets`` folders): ``reasonlab/tables.py``. Schemas (ShareGPT,
s1K, OpenR1, messages, prompt/completion), detected per record: ``sft_formats.py``. Rows,
normalisation to the R1 format and bad-row reasons: ``sft_rows.py``. Masks (every
assistant token, ``<think>`` block and end-of-turn marker included, verified against the chat
template): ``sft_masks.py``.

Length: an example longer than ``max_len`` tokens is dropped and counted, never cut so that its
answer disappears. ``truncate=True`` instead cuts tokens from the *left* (system prompt and early
turns first) as long as the last assistant turn stays whole; a target turn that is cut into loses
its loss (a reasoning tail without its start would teach nonsense). Before any tokenizing, a row
whose text cannot fit (more characters than ``max_len`` x the longest vocabulary entry; with
``truncate``, the last assistant turn's text) is dropped as too long, so a 5 MB record costs a
length check. Each drop is counted in the stats with its ``file:line``.

Batch dict (all (B, L) int64 tensors; no ``attention_mask`` on purpose):
- ``input_ids``: packed examples, right-padded with ``pad_id``.
- ``position_ids``: restart at 0 for every example; padding continues the last example's count.
  With no 2D attention mask and no cache, transformers (``masking_utils.find_packed_sequence_indices``)
  reads a restart as a sequence boundary and builds a block-diagonal causal mask, so packed
  examples never see each other (tested for eager and SDPA attention on a tiny Llama). A row holding one example has no restart and keeps the plain causal fast path; padding
  sits after every real token, so causal attention never reads it.
- ``target_ids``: already shifted: ``target_ids[b, t]`` is the token position t must predict, -100
  where there is none (prompt, padding, an example's last token, across example boundaries).
- ``prefix_ids`` (1, P), only from ``collate(..., share_prefix=True)``: the tokens all rows start
  with, run once by ``sft_loss``; the other keys then hold columns P.. of each row.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from reasonlab.errors import DataError
from reasonlab.io import MAX_LINE_BYTES
from reasonlab.tables import data_sources, iter_rows
from reasonlab.train.sft_formats import ReadSpec, conversations
from reasonlab.train.sft_masks import encode
from reasonlab.train.sft_rows import Conversation

IGNORE = -100
LISTED = 5  # bad rows named in the error and kept in the stats


@dataclass(frozen=True)
class SFTExample:
    source: str  # "file:line"
    ids: tuple[int, ...]
    mask: tuple[int, ...]  # 1 where ids[t] is a target token

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class SFTStats:
    rows: int = 0
    examples: int = 0
    bad_rows: int = 0
    too_long: int = 0
    truncated: int = 0
    tokens: int = 0
    target_tokens: int = 0
    unverified: int = 0  # OpenR1 records with no verified generation (none asked for)
    formats: dict[str, int] = field(default_factory=dict)  # records read by each format
    bad_row_samples: list[str] = field(default_factory=list)  # first LISTED "file:line: reason"
    too_long_samples: list[str] = field(default_factory=list)  # first LISTED "file:line"

    def metrics(self) -> dict[str, int]:
        """The counts, for metrics.jsonl / summary.json."""
        return {k: v for k, v in asdict(self).items() if isinstance(v, int)}


def load_sft_data(path: str | Path, tokenizer, max_len: int, *, on_bad_rows: str = "fail",
                  truncate: bool = False, max_line_bytes: int = MAX_LINE_BYTES,
                  spec: ReadSpec = ReadSpec()) -> tuple[list[SFTExample], SFTStats]:
    """All examples under ``path`` (a file or folder, see ``tables.py``), in file and row order.

    on_bad_rows: "fail" raises one DataError naming the first few bad rows (``file:line: reason``)
    and the total, before any training; "skip" leaves them out and counts them in the stats.
    """
    if on_bad_rows not in ("fail", "skip"):
        raise DataError(f"on_bad_rows: expected 'fail' or 'skip', got {on_bad_rows!r}")
    spec.check()
    stats, examples, bad = SFTStats(), [], []
    cap = max_len * max_token_chars(tokenizer)
    for source in data_sources(path):
        for src, record, error in iter_rows(source, max_line_bytes):
            stats.rows += 1
            try:
                if error is not None:
                    raise DataError(f"{src}: {error}")
                name, convs = conversations(src, record, spec)
                made = [make_example(tokenizer, c, max_len, truncate, cap) for c in convs]
            except DataError as exc:
                bad.append(str(exc))
                continue
            stats.formats[name] = stats.formats.get(name, 0) + 1
            stats.unverified += not convs
            for conv, one in zip(convs, made):
                if one is None:
                    stats.too_long += 1
                    if len(stats.too_long_samples) < LISTED:
                        stats.too_long_samples.append(conv.source)
                    continue
                examples.append(one[0])
                stats.truncated += one[1]
    stats.bad_rows, stats.bad_row_samples = len(bad), bad[:LISTED]
    if bad and on_bad_rows == "fail":
        raise DataError(f"{len(bad)} bad row(s) of {stats.rows} in {path} (on_bad_rows=skip skips "
                        f"them); first {min(len(bad), LISTED)}: " + " | ".join(bad[:LISTED]))
    if stats.rows == 0:
        raise DataError(f"{path}: no records (empty dataset)")
    if not examples:
        raise DataError(f"{path}: no usable examples ({stats.rows} rows, {stats.bad_rows} bad, "
                        f"{stats.too_long} longer than max_len={max_len}, {stats.unverified} with no "
                        f"verified trace)")
    stats.examples = len(examples)
    stats.tokens = sum(len(e) for e in examples)
    stats.target_tokens = sum(sum(e.mask) for e in examples)
    return examples, stats


def make_example(tokenizer, conv: Conversation, max_len: int, truncate: bool, cap: int
                 ) -> tuple[SFTExample, bool] | None:
    """(example, was it truncated), or None when it does not fit ``max_len`` (see module doc)."""
    last = conv.messages[conv.targets[-1]]["content"]
    if (len(last) if truncate else conv.chars()) > cap:
        return None
    enc = encode(tokenizer, conv)
    cut = max(0, len(enc.ids) - max_len)
    if cut and (not truncate or cut > enc.spans[-1][0]):
        return None
    mask = [0] * len(enc.ids)
    for a, b in enc.spans:
        if a >= cut:
            mask[a:b] = [1] * (b - a)
    return SFTExample(conv.source, enc.ids[cut:], tuple(mask[cut:])), cut > 0


def max_token_chars(tokenizer) -> int:
    """Longest vocabulary entry in characters: no token decodes to more characters than its
    entry has (byte-level BPE stores one character per byte), so text longer than
    ``max_len * max_token_chars`` cannot fit in ``max_len`` tokens."""
    return max(len(t) for t in tokenizer.get_vocab())


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The order of examples 0..n-1 in ``epoch`` for ``seed``: a pure function, so a resumed run
    recomputes the interrupted epoch's order and continues at its saved position. Seeded by a
    string (hashed with SHA-512 by ``random``), so (seed, epoch) pairs never collide."""
    order = list(range(n))
    random.Random(f"sft-order:{seed}:{epoch}").shuffle(order)
    return order


def plan_batches(lengths: list[int], order: list[int], rows_per_batch: int, max_len: int,
                 pack: bool) -> list[list[list[int]]]:
    """Batches of rows of example indices, following ``order``.

    pack=False: one example per row. pack=True: next-fit — consecutive examples share a row while
    their total stays <= max_len; order-preserving, so the position in an epoch is just a batch
    index. The last batch may hold fewer rows.
    """
    if pack:
        rows, cur, used = [], [], 0
        for i in order:
            if cur and used + lengths[i] > max_len:
                rows.append(cur)
                cur, used = [], 0
            cur.append(i)
            used += lengths[i]
        if cur:
            rows.append(cur)
    else:
        rows = [[i] for i in order]
    return [rows[k:k + rows_per_batch] for k in range(0, len(rows), rows_per_batch)]


def collate(rows: list[list[SFTExample]], pad_id: int, pad_to_multiple_of: int = 1,
            share_prefix: bool = False) -> dict[str, torch.Tensor]:
    """The batch dict for ``sft_loss`` (keys and layout in the module docstring).

    share_prefix: for unpacked rows (one example each; packed rows raise ValueError). The tokens
    every row starts with (chat header + system prompt: half of each R1 arith example) move to
    ``prefix_ids`` (1, P), and the other keys keep columns P.. only (positions still count from
    0 at each row's start). ``sft_loss`` then runs the prefix once and lets every row attend to
    its K/V: the same loss and exact gradient for less compute. P stops before the position
    that predicts the first target token, so no needed logit falls inside the prefix.
    """
    width = max(sum(len(e) for e in row) for row in rows)
    width = -(-width // pad_to_multiple_of) * pad_to_multiple_of
    B = len(rows)
    input_ids = torch.full((B, width), pad_id, dtype=torch.long)
    position_ids = torch.zeros((B, width), dtype=torch.long)
    target_ids = torch.full((B, width), IGNORE, dtype=torch.long)
    for b, row in enumerate(rows):
        t = 0
        for ex in row:
            n = len(ex)
            ids = torch.tensor(ex.ids, dtype=torch.long)
            input_ids[b, t:t + n] = ids
            position_ids[b, t:t + n] = torch.arange(n)
            nxt = torch.tensor(ex.mask[1:], dtype=torch.bool)
            target_ids[b, t:t + n - 1] = torch.where(nxt, ids[1:], IGNORE)
            t += n
        position_ids[b, t:] = torch.arange(n, n + width - t)
    batch = {"input_ids": input_ids, "position_ids": position_ids, "target_ids": target_ids}
    if not share_prefix:
        return batch
    if any(len(row) != 1 for row in rows):
        raise ValueError("share_prefix needs unpacked rows (one example per row)")
    limit = min(r[0].mask.index(1) if 1 in r[0].mask else len(r[0]) for r in rows) - 1
    same = (input_ids == input_ids[:1]).all(0)[:max(limit, 0)]
    P = int(same.long().cumprod(0).sum())
    if B < 2 or P == 0:
        return batch
    return {"prefix_ids": input_ids[:1, :P], **{k: v[:, P:] for k, v in batch.items()}}


def n_targets(batch: dict[str, torch.Tensor]) -> int:
    """Target tokens in a batch: the trainer sums this over an accumulated step to normalise."""
    return int((batch["target_ids"] != IGNORE).sum())
