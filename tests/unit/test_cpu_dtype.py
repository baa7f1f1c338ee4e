"""The CPU dtype choice: flags gate it, a timing decides it, the cache keeps it."""

import torch

from reasonlab import cpu_dtype

AMD = "model name\t: AMD EPYC 9R14\nflags\t\t: fpu avx2 avx512f avx512_bf16\n\nprocessor\t: 1\n"
AVX2 = "model name\t: AMD EPYC 7R13\nflags\t\t: fpu avx2\n"


def test_no_bf16_instructions_means_fp32_without_timing(tmp_path, monkeypatch):
    monkeypatch.setattr(cpu_dtype, "measure", lambda: (_ for _ in ()).throw(AssertionError("timed")))
    assert cpu_dtype.prefers_bf16(AVX2, tmp_path) is False
    assert list(tmp_path.iterdir()) == []


def test_the_timing_decides_with_a_margin_and_is_remembered(tmp_path, monkeypatch):
    calls = []

    def timed(dtype, *a, **k):
        calls.append(dtype)
        return {torch.float32: 1.0, torch.bfloat16: timed.bf16}[dtype]

    monkeypatch.setattr(cpu_dtype, "matmul_seconds", timed)
    timed.bf16 = 0.9  # faster, but within the margin: fp32
    assert cpu_dtype.prefers_bf16(AMD, tmp_path / "a") is False
    timed.bf16 = 0.5
    assert cpu_dtype.prefers_bf16(AMD, tmp_path / "b") is True
    n = len(calls)
    timed.bf16 = 2.0  # the machine is known now: no new timing, the same answer (a resume picks the same dtype)
    assert cpu_dtype.prefers_bf16(AMD, tmp_path / "b") is True
    assert len(calls) == n
    other = AMD.replace("9R14", "9R15")
    assert cpu_dtype.prefers_bf16(other, tmp_path / "b") is False  # another CPU is timed anew
    assert len(calls) > n


def test_a_damaged_cache_file_is_measured_again(tmp_path, monkeypatch):
    monkeypatch.setattr(cpu_dtype, "measure", lambda: {"fp32_s": 1.0, "bf16_s": 0.1, "bf16": True})
    assert cpu_dtype.prefers_bf16(AMD, tmp_path) is True
    (path,) = tmp_path.iterdir()
    path.write_text("{not json")
    assert cpu_dtype.prefers_bf16(AMD, tmp_path) is True
    assert '"bf16": true' in path.read_text()


def test_the_real_timing_runs_on_this_cpu():
    assert 0 < cpu_dtype.matmul_seconds(torch.float32, (64, 64, 64), repeats=2) < 10
    found = cpu_dtype.measure()
    assert found["bf16"] == (found["bf16_s"] * cpu_dtype.MARGIN < found["fp32_s"])
