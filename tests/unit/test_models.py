import pytest
import torch

from reasonlab import models


def test_save_roundtrip_loads_with_plain_transformers(tmp_path, tiny_model):
    from transformers import AutoModelForCausalLM

    out = models.save(tiny_model, None, tmp_path / "ckpt")
    again = AutoModelForCausalLM.from_pretrained(out)
    ids = torch.tensor([[1, 5, 7, 9]])
    with torch.no_grad():
        assert torch.allclose(tiny_model(ids).logits, again(ids).logits, atol=1e-5)
    # saving again over an existing directory replaces it atomically
    models.save(tiny_model, None, tmp_path / "ckpt")
    assert not list(tmp_path.glob(".ckpt*"))


def test_lora_is_merged_on_save(tmp_path, tiny_model):
    from transformers import AutoModelForCausalLM

    peft_model = models.attach_lora(tiny_model, models.LoraConfig(r=2, alpha=4))
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.fill_(0.05)
    ids = torch.tensor([[1, 5, 7, 9]])
    with torch.no_grad():
        expected = peft_model(ids).logits
    out = models.save(peft_model, None, tmp_path / "merged")
    plain = AutoModelForCausalLM.from_pretrained(out)
    assert not any("lora" in n for n, _ in plain.named_parameters())
    with torch.no_grad():
        assert torch.allclose(plain(ids).logits, expected, atol=1e-4)


def test_unknown_specs_give_clear_errors(tmp_path):
    with pytest.raises(models.ModelError, match="valid: smollm2-135m"):
        models.resolve("not-a-model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(models.ModelError, match="without config.json"):
        models.resolve(str(tmp_path / "empty"))
    with pytest.raises(models.ModelError, match="GGUF file not found"):
        models.resolve(str(tmp_path / "x.gguf"))
    assert models.resolve("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_dtype_resolution(monkeypatch):
    assert models.resolve_dtype("fp32") is torch.float32
    monkeypatch.setenv("REASONLAB_DTYPE", "fp32")
    assert models.default_dtype() is torch.float32
    with pytest.raises(models.ModelError, match="unknown dtype"):
        models.resolve_dtype("int3")


@pytest.fixture
def saved_tiny(tmp_path, tiny_model):
    """A tiny model in HF format with the embedded tokenizer beside it (loads for real)."""
    tiny_model.save_pretrained(tmp_path / "m")
    models.load_tokenizer("smollm2-135m").save_pretrained(tmp_path / "m")
    return tmp_path / "m"


def _one_line(exc) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_intact_model_loads(saved_tiny):
    model, tok = models.load(str(saved_tiny), dtype="fp32")
    assert model.config.hidden_size == 32 and tok.pad_token is not None


@pytest.mark.parametrize("damage, words", [
    (lambda f: f.write_bytes(f.read_bytes()[: f.stat().st_size // 2]), "truncated safetensors file"),
    (lambda f: f.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all" + b"0" * 64), "header is not valid"),
    (lambda f: f.write_bytes(b"garbage"), "no valid header"),
    (lambda f: f.write_bytes(b"\xff" * 64), "no valid header"),
])
def test_corrupt_safetensors_is_a_model_error_naming_the_file(saved_tiny, damage, words):
    """Issue 14 item 11: a corrupt model.safetensors was a transformers traceback."""
    weights = saved_tiny / "model.safetensors"
    damage(weights)
    with pytest.raises(models.ModelError) as info:
        models.load(str(saved_tiny), dtype="fp32")
    assert str(weights) in _one_line(info) and words in str(info.value)


def test_file_named_gguf_that_is_not_gguf(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_text("this is a text file, not a model\n")
    with pytest.raises(models.ModelError) as info:
        models.load(str(fake))
    assert f"{fake}: not a GGUF file" in _one_line(info)
    fake.write_bytes(b"GGUF" + b"\x00" * 40)  # the magic, then nonsense
    with pytest.raises(models.ModelError) as info:
        models.load(str(fake))
    assert f"{fake}: cannot read this GGUF file" in _one_line(info)
