"""snnzoo: spiking neural networks trained with STBP (Wu et al., AAAI 2019).

`create_model` and `list_models` are loaded lazily so that ``import snnzoo.runtime``
(the ONNX inference path) never imports torch.
"""
from ._version import __version__

__all__ = ["__version__", "create_model", "list_models"]


def __getattr__(name: str):
    if name in ("create_model", "list_models"):
        from .zoo import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'snnzoo' has no attribute {name!r}")
