"""A tiny random Llama saved in HF format with the embedded model's tokenizer: a real model
directory that ``reasonlab`` commands load and sample in well under a second."""

from __future__ import annotations

from pathlib import Path


def save_tiny_model(path: str | Path, *, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    from reasonlab.models import load_tokenizer, tiny_llama

    path = Path(path)
    tok = load_tokenizer("smollm2-135m")
    model = tiny_llama(vocab_size=len(tok), hidden=hidden, layers=layers, seed=seed)
    model.config.eos_token_id = model.generation_config.eos_token_id = tok.eos_token_id
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path
