"""Write worked arithmetic solutions in the R1 format, as SFT rows (``{"messages": [...]}``).

Why a script: the SFT measurement in the README needs a few hundred well-formed, correct
reasoning traces for the embedded model's task, and the embedded model is too weak to write
them itself. Each trace works the sum out step by step inside ``<think>`` (``ArithTask.worked``, the
same teacher as the R1 recipe's ``cold_start.worked``) and gives the number in ``<answer>``; problems come from the task's train split (held-out evaluation uses
the test split, which the task keeps disjoint).

    python scripts/arith_sft_data.py --n 300 --out runs/arith-sft.jsonl [--max-number 20] [--operands 3]
"""

from __future__ import annotations

import argparse
import json

from reasonlab.tasks.base import get_task
from reasonlab.traces.worked import worked_rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--out", required=True)
    ap.add_argument("--max-number", type=int, default=20)
    ap.add_argument("--operands", type=int, default=2)
    args = ap.parse_args()
    task = get_task("arith", max_number=args.max_number, operands=args.operands)
    with open(args.out, "w") as f:
        for row in worked_rows(task, task.load("train", args.n)):
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
