"""Evaluation: metrics (unbiased pass@k, maj@k), the resumable runner, and HTML reports."""
