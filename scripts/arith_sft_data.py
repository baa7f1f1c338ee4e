"""Write worked arithmetic solutions in the R1 format, as SFT rows (``{"messages": [...]}``).

Why a script: the SFT measurement in the README needs a few hundred well-formed, correct
reasoning traces for the embedded model's task, and the embedded model is too weak to write
them itself. Each trace works the sum out digit by digit inside ``<think>`` and gives the
number in ``<answer>``; problems come from the task's train split (held-out evaluation uses
the test split, which the task keeps disjoint).

    python scripts/arith_sft_data.py --n 300 --out runs/arith-sft.jsonl [--max-number 20] [--operands 3]
"""

from __future__ import annotations

import argparse
import json
import re

from reasonlab import prompts
from reasonlab.tasks.base import get_task


def worked(question: str, answer: str) -> str:
    """A short chain of thought for 'What is a + b?' or 'What is a - b + c ...?' (left to right)."""
    tokens = re.findall(r"-?\d+|[+-]", question.removeprefix("What is ").rstrip("?"))
    if len(tokens) < 3:
        return f"The answer is {answer}."
    if len(tokens) == 3:
        a, op, b = int(tokens[0]), tokens[1], int(tokens[2])
        if op == "+":
            steps = f"I need {a} plus {b}. Starting at {a} and adding {b} gives {a + b}."
        else:
            steps = f"I need {a} minus {b}. Starting at {a} and taking away {b} gives {a - b}."
            if a < b:
                steps += f" {b} is larger than {a}, so the result is negative: {a - b}."
        return f"{steps}\nSo {a} {op} {b} = {answer}."
    total, lines = int(tokens[0]), []
    for op, x in zip(tokens[1::2], tokens[2::2]):
        new = total + int(x) if op == "+" else total - int(x)
        lines.append(f"{total} {op} {x} = {new}.")
        total = new
    return "Left to right:\n" + "\n".join(lines) + f"\nSo the answer is {answer}."


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--out", required=True)
    ap.add_argument("--max-number", type=int, default=20)
    ap.add_argument("--operands", type=int, default=2)
    args = ap.parse_args()
    task = get_task("arith", max_number=args.max_number, operands=args.operands)
    with open(args.out, "w") as f:
        for p in task.load("train", args.n):
            msgs = prompts.build(p, "r1_noprefill")
            content = f"{prompts.THINK_PREFILL}{worked(p.question, p.answer)}\n</think>\n<answer>{p.answer}</answer>"
            f.write(json.dumps({"messages": msgs + [{"role": "assistant", "content": content}],
                                "problem_id": p.id}) + "\n")


if __name__ == "__main__":
    main()
