"""Containers: Sequential (a chain of layers) and ModuleList (a list of layers, named 0, 1, 2, ...)."""
from collections import OrderedDict

from .module import Module


class _Container(Module):
    """What both containers are: registered layers in order, indexed, counted, iterated, appended to."""

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self._from_items(list(self._modules.items())[index])
        return list(self._modules.values())[index]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class Sequential(_Container):
    """Calls its layers in order; ``Sequential(a, b)`` or ``Sequential(OrderedDict(name=a, ...))``."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for m in modules:
                self.append(m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    @staticmethod
    def _from_items(items):
        return Sequential(OrderedDict(items))  # a slice keeps the original names, so state-dict keys stay torch's


class ModuleList(_Container):
    """A list of Modules whose parameters are registered (a plain Python list would hide them)."""

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    @staticmethod
    def _from_items(items):
        return ModuleList(m for _, m in items)  # renumbered from 0, like torch's ModuleList slice
