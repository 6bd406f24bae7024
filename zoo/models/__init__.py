"""The seven models, one file each, shaped like their paper's table (a config list, a block class, a
builder), the block they share (``blocks.conv_bn``) and ``REGISTRY``, the one table of models (registry.py)."""
from .registry import CIFAR_RECIPE, RECIPE_KEYS, REGISTRY, ModelEntry

__all__ = ["CIFAR_RECIPE", "RECIPE_KEYS", "REGISTRY", "ModelEntry"]
