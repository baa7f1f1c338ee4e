"""Write worked arithmetic solutions in the R1 format, as SFT rows (``{"messages": [...]}``).

Why a script: the SFT measurement in the README needs a few hundred well-formed, correct
reasoning traces for the embedded model's task, and the embedded model is too weak to write
them itself. Each trace works the sum out step by step inside ``<think>`` (``ArithTask.worked``, the
same teacher as the R1 recipe's ``cold_start.worked``) and gives the number in ``<answer>``; problems come from the task's train split (held-out evaluation uses
the test split, which the task keeps disjoint).

    python scripts/arith_sft_data.py --n 300 --out runs/arith-sft.jsonl [--max-number 20] [--operands 3]

``--schema sharegpt`` or ``s1k`` writes the same traces in the shape of a public trace set instead
(Sky-T1's ShareGPT rows with its thought/solution markers, or s1K-1.1's columns), and an ``--out``
ending in ``.parquet`` writes parquet, as the hub ships them: the README's "bring your own
traces" run reads these exactly as it would read a download.
"""

from __future__ import annotations

import argparse
import json

from reasonlab.tasks.base import get_task
from reasonlab.traces.worked import worked_rows

SKY_SYSTEM = ("Your role as an assistant involves thoroughly exploring questions through a systematic "
              "thinking process before giving the final answer. Structure your response in two sections: "
              "Thought and Solution, written as <|begin_of_thought|> {thought} <|end_of_thought|> "
              "<|begin_of_solution|> {solution} <|end_of_solution|>.")


def reshape(row: dict, schema: str) -> dict:
    """A worked R1 row as a ShareGPT (Sky-T1) or s1K-1.1 record."""
    if schema == "messages":
        return row
    question = row["messages"][1]["content"]
    thought, _, answer = row["messages"][-1]["content"].removeprefix("<think>\n").partition("\n</think>\n")
    if schema == "sharegpt":
        value = (f"<|begin_of_thought|>\n\n{thought}\n\n<|end_of_thought|>\n\n"
                 f"<|begin_of_solution|>\n\n{answer}\n\n<|end_of_solution|>")
        return {"system": SKY_SYSTEM, "conversations": [{"from": "user", "value": question},
                                                        {"from": "assistant", "value": value}]}
    return {"question": question, "solution": answer, "cot_type": "math",
            "deepseek_thinking_trajectory": thought, "deepseek_attempt": answer}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--out", required=True)
    ap.add_argument("--max-number", type=int, default=20)
    ap.add_argument("--operands", type=int, default=2)
    ap.add_argument("--schema", choices=["messages", "sharegpt", "s1k"], default="messages")
    args = ap.parse_args()
    task = get_task("arith", max_number=args.max_number, operands=args.operands)
    rows = [reshape(r, args.schema) for r in worked_rows(task, task.load("train", args.n))]
    if args.out.endswith(".parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), args.out)
        return
    with open(args.out, "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
