"""The task registry: every task the command line, the sweep runner and ``analyze`` know.

Built-in tasks are registered here, by import (no lookup of modules by string)::

    from blaviz.experiments.registry import get_task
    mqar = get_task("mqar")
    preset = mqar.get_preset("ci")
    specs = mqar.sweep_specs(preset, mixers=("bla",))

A new task is a :class:`~blaviz.experiments.task.Task` subclass in its own module; add it to
``_BUILTIN`` below (or call :func:`register_task` from your own code). A new preset of an existing
task is ``get_task("mqar").add_preset(Preset(task="mqar", name=..., ...))`` in the module that
defines the task, or in a module imported below.
"""
from __future__ import annotations

from blaviz.experiments import mqar, regbench, zoology
from blaviz.experiments.task import Task

_TASKS: dict[str, Task] = {}


def register_task(task: Task, *, replace: bool = False) -> Task:
    """Make ``task`` known under ``task.name`` (an existing name is an error unless ``replace``)."""
    if not isinstance(task, Task):
        raise TypeError(f"register_task needs a Task instance, got {type(task).__name__}")
    if not task.name:
        raise ValueError(f"{type(task).__name__} has no name")
    if task.name in _TASKS and not replace:
        raise ValueError(f"a task named {task.name!r} is already registered")
    _TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    """The registered task called ``name``."""
    if name not in _TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of {task_names()}")
    return _TASKS[name]


def task_names() -> tuple[str, ...]:
    return tuple(_TASKS)


def get_preset(spec: str):
    """``"mqar:book"`` -> that task's preset (how provenance records name a preset)."""
    task, sep, name = spec.partition(":")
    if not sep or not name:
        raise ValueError(f"a preset is named TASK:NAME (e.g. mqar:book), got {spec!r}")
    return get_task(task).get_preset(name)


_BUILTIN = (mqar.TASK, regbench.TASK, zoology.TASK)
for _task in _BUILTIN:
    register_task(_task)
