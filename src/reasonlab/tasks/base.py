"""The Task protocol and registry.

A task turns a split into ``Problem``s (stable ids, reference answers) and judges a completion.
Registry entries are factories ``fn(**options) -> Task`` taking keyword options such as
``data`` (a path), ``seed``, ``difficulty`` or field names, so the CLI can pass what it has.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from reasonlab.registry import Registry, RegistryError
from reasonlab.types import Problem, Score


@runtime_checkable
class Task(Protocol):
    name: str

    def load(self, split: str = "test", limit: int | None = None) -> list[Problem]:
        """Problems of ``split`` in a fixed order; ``limit`` keeps the first N."""
        ...

    def score(self, problem: Problem, completion: str) -> Score:
        """Extract the answer from ``completion`` and judge it; never raises."""
        ...


TASKS: Registry = Registry("task")


def get_task(name: str, **options) -> Task:
    import reasonlab.tasks  # noqa: F401  (fills the registry)

    import inspect

    factory = TASKS.get(name)
    options = {k: v for k, v in options.items() if v is not None}
    params = inspect.signature(factory).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        extra = sorted(set(options) - set(params))
        if extra:
            raise RegistryError(f"task {name!r} does not take option(s) {', '.join(extra)}; "
                                f"it takes: {', '.join(params) or 'none'}")
    return factory(**options)
