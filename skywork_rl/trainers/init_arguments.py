"""Read a trainer's constructor arguments by name, whatever mix of positions and keywords the caller used."""

from __future__ import annotations

import inspect
from typing import Any


def bind_trainer_arguments(
    trainer: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> inspect.BoundArguments:
    """`args` / `kwargs` of ``type(trainer)(...)`` bound to the parameters of the TRL / transformers class it extends.

    Our mixins sit before that class in the MRO and take ``*args, **kwargs``; this names them
    (``train_dataset``, ``args``, ...). Call the next ``__init__`` with ``*bound.args[1:], **bound.kwargs``.
    """
    base = next(c for c in type(trainer).__mro__ if c.__module__.split(".")[0] in ("trl", "transformers"))
    return inspect.signature(base.__init__).bind(trainer, *args, **kwargs)
