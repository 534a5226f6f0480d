"""Tasks, one module each, keyed by the manifest's ``task``: what is task-specific on the training side.

Metrics, their direction and the default accuracy budget live in ``edgetl_runtime.metrics``, decoding
outputs in ``edgetl_runtime.predict``; a task reuses them. Adding a task (speech recognition next) is
one module here plus its line in ``TASKS``.
"""

from __future__ import annotations

from ..errors import EdgetlError
from .base import Task
from .classification import CLASSIFICATION
from .regression import REGRESSION

TASKS: dict[str, Task] = {t.name: t for t in (CLASSIFICATION, REGRESSION)}


def get_task(name: str) -> Task:
    """The task called ``name``."""
    if name not in TASKS:
        raise EdgetlError(f"unknown task '{name}'; known: {', '.join(TASKS)}")
    return TASKS[name]


__all__ = ["TASKS", "Task", "get_task"]
