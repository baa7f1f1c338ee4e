"""Recipes: short compositions of tasks, rewards and trainers; YAML configs live in configs/."""

from pathlib import Path

CONFIG_DIR = Path(__file__).parent / "configs"


def config_path(name_or_path: str) -> Path:
    """A recipe name (``r1_zero_arith``) or a path to a YAML file."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    return CONFIG_DIR / f"{name_or_path}.yaml"
