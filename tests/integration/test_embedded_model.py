import pytest
import torch

from reasonlab import models

pytestmark = pytest.mark.integration


def test_embedded_model_loads_and_converts_once():
    model, tok = models.load("smollm2-135m", dtype="fp32")
    assert model.config.num_hidden_layers == 30
    assert tok.padding_side == "left" and tok.pad_token is not None
    path = models.resolve("smollm2-135m")
    assert (path / "model.safetensors").exists()
    ids = tok("2 + 2 =", return_tensors="pt").input_ids
    with torch.no_grad():
        logits = model(ids).logits
    assert torch.isfinite(logits).all()
