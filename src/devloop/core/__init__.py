"""The pure core: deciding, parsing, planning; nothing here starts a process.

Its modules load on first use (the first attribute read), not on import: `inv --list` imports every task
module, and most runs need only a few of the core's modules.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType


class _LoadOnFirstUse(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(__name__ + "."):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = importlib.util.LazyLoader(spec.loader)
        return spec


if not any(isinstance(finder, _LoadOnFirstUse) for finder in sys.meta_path):
    sys.meta_path.insert(0, _LoadOnFirstUse())
