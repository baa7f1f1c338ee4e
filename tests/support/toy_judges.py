"""A scripted judge backend reachable by import path ("toy_judges:make"), as a YAML spec names it.

It answers "VERDICT: yes" when the graded response's answer block holds the reference answer,
and counts how often it was built, so tests can check a spec builds its backend once."""

import re

from reasonlab.types import Completion

BUILT = []


class ToyJudge:
    name = "toy-judge"

    def __init__(self, model):
        self.model, self.prompts = model, []

    def generate(self, prompts, params):
        out = []
        for p in prompts:
            self.prompts.append(p)
            text = p[-1]["content"]
            ref = re.search(r"Reference answer: (.*)", text).group(1).strip()
            ok = f"<answer>{ref}</answer>" in text
            out.append([Completion(text=f"checked. VERDICT: {'yes' if ok else 'no'}")] * params.n)
        return out

    def sync_weights(self):
        pass


def make(model, **options):
    judge = ToyJudge(model)
    BUILT.append((model, options))
    return judge
