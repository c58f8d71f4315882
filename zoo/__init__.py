"""Spiking networks: LIF neurons with STBP surrogates, NeuNorm, voting, models, registry."""
from . import models  # noqa: F401  (registers the built-in models)
from .lif import LIF
from .network import SpikingNet
from .nir_import import from_nir
from .neunorm import NeuNorm
from .registry import create_model, get_pretrained_cfg, list_models, register_model
from .voting import Voting

__all__ = ["LIF", "NeuNorm", "SpikingNet", "Voting", "create_model", "from_nir", "get_pretrained_cfg",
           "list_models", "register_model"]
