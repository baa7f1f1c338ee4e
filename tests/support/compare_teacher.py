"""A local teacher for the compare tests (``teacher.backend: compare_teacher:teacher``): answers
arith questions in the R1 layout, right on two of three samples, with made-up token ids (one per
word) and a fixed 7-token prompt, so its traces pass the verifier and its compute is countable."""

from __future__ import annotations

import hashlib
import re

from reasonlab.tasks.arith import worked_solution
from reasonlab.types import Completion


class Teacher:
    name = "compare-teacher"

    def generate(self, prompts, params):
        out = []
        for p in prompts:
            q = p[1]["content"] if isinstance(p, list) else p
            a, op, b = re.search(r"(-?\d+) ([+-]) (-?\d+)", q).groups()
            v = int(a) + int(b) if op == "+" else int(a) - int(b)
            texts = []
            for i in range(params.n):
                h = int(hashlib.sha256(f"{q}|{params.seed}|{i}".encode()).hexdigest(), 16)
                val = v + (h % 3 == 0)
                q_ = f"What is {a} {op} {b}?"
                texts.append(worked_solution(q_, str(val)) + f"\n</think>\n<answer>{val}</answer>")
            out.append([Completion(text=t, token_ids=tuple(range(len(t.split()))), prompt_token_ids=tuple(range(7)))
                        for t in texts])
        return out

    def sync_weights(self):
        pass


def teacher(model, **options):
    return Teacher()
