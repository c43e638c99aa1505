"""Model registry in the timm style: models register by name, everything else builds by name.

Export, tests and checkpoints refer to models only through their registered names, so a
checkpoint's ``hyper_parameters["model_name"]`` and ``["model_kwargs"]`` rebuild the exact
module with :func:`create_model` (no Lightning needed). Importing
``orstream.training.models`` registers every model the project ships.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from orstream.errors import OrstreamError

ModelFactory = Callable[..., nn.Module]
F = TypeVar("F", bound=ModelFactory)

_MODELS: dict[str, ModelFactory] = {}


def register_model(factory: F) -> F:
    """Register a model factory (a function or an ``nn.Module`` class) under its ``__name__``.

    Raises:
        ValueError: another factory already holds the name (two models must never share one).
    """
    name = factory.__name__
    if name in _MODELS and _MODELS[name] is not factory:
        raise ValueError(f"model {name!r} is already registered")
    _MODELS[name] = factory
    return factory


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the registered model ``name`` with ``kwargs``.

    Raises:
        OrstreamError: no model of that name is registered.
    """
    _register_shipped_models()
    if name not in _MODELS:
        raise OrstreamError(
            f"unknown model {name!r}; registered models: {', '.join(list_models())}"
        )
    return _MODELS[name](**kwargs)


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    _register_shipped_models()
    return sorted(_MODELS)


def _register_shipped_models() -> None:
    # Importing the models package runs its @register_model decorators; doing it here means a
    # caller that only imports the registry still sees every shipped model.
    import orstream.training.models  # noqa: F401
