"""Traces for distillation and rejection sampling: sample a teacher, keep verified, clean,
uncontaminated traces, pick a subset, write SFT rows.

- ``generate.py``: the resumable sampling loop (append-only ``raw.jsonl``).
- ``response.py``: one response in our format (pre-fill + completion, or a server's separate
  reasoning joined in), and the answer after ``</think>``.
- ``verdicts.py``: the task's verifier on the answer part, an LLM judge as opt-in fallback.
- ``filters.py``: R1's quality filters; ``dedup.py``: exact and near duplicates;
  ``decontam.py``: n-gram overlap with the evaluation sets the project ships.
- ``select.py``: per-problem pass rate, s1-style subset selection.
- ``pipeline.py``: raw results -> verdicts -> filters -> selection -> traces.jsonl + stats.json.
- ``run.py``: one ``reasonlab generate`` run (sample what is missing, rebuild the outputs).
"""
