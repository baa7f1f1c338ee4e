"""Write worked arithmetic solutions in the R1 format, as SFT rows (``{"messages": [...]}``).

Why a script: the SFT measurement in the README needs a few hundred well-formed, correct
reasoning traces for the embedded model's task, and the embedded model is too weak to write
them itself. Each trace works the sum out digit by digit inside ``<think>`` and gives the
number in ``<answer>``; problems come from the task's train split (held-out evaluation uses
the test split, which the task keeps disjoint).

    python scripts/arith_sft_data.py --n 300 --out runs/arith-sft.jsonl [--max-number 20]
"""

from __future__ import annotations

import argparse
import json
import re

from reasonlab import prompts
from reasonlab.tasks.base import get_task


def worked(question: str, answer: str) -> str:
    """A short chain of thought for 'What is a + b?' / 'What is a - b?'."""
    m = re.search(r"(-?\d+)\s*([+-])\s*(-?\d+)", question)
    if not m:
        return f"The answer is {answer}."
    a, op, b = int(m.group(1)), m.group(2), int(m.group(3))
    if op == "+":
        steps = f"I need {a} plus {b}. Starting at {a} and adding {b} gives {a + b}."
    else:
        steps = f"I need {a} minus {b}. Starting at {a} and taking away {b} gives {a - b}."
        if a < b:
            steps += f" {b} is larger than {a}, so the result is negative: {a - b}."
    return f"{steps}\nSo {a} {op} {b} = {answer}."


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--out", required=True)
    ap.add_argument("--max-number", type=int, default=20)
    args = ap.parse_args()
    task = get_task("arith", max_number=args.max_number)
    with open(args.out, "w") as f:
        for p in task.load("train", args.n):
            msgs = prompts.build(p, "r1_noprefill")
            content = f"{prompts.THINK_PREFILL}{worked(p.question, p.answer)}\n</think>\n<answer>{p.answer}</answer>"
            f.write(json.dumps({"messages": msgs + [{"role": "assistant", "content": content}],
                                "problem_id": p.id}) + "\n")


if __name__ == "__main__":
    main()
