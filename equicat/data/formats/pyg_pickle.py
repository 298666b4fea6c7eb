"""Unpickle fairchem LMDB entries without torch_geometric and without trusting the pickle.

An OC20/fairchem LMDB value is ``pickle.dumps`` of a ``torch_geometric.data.Data``. Loading
it with plain ``pickle`` would import torch_geometric and could run any callable the file
names. :class:`SafeUnpickler` resolves only an allow-list of globals: the PyG data classes
(mapped to the inert :class:`PygRecord`), torch's tensor rebuild functions, numpy's array
reconstruction, ``OrderedDict`` and ``copyreg._reconstructor``. Tensor storages inside the
pickle are loaded with ``torch.load(weights_only=True)`` instead of torch's unrestricted
loader. Any other global raises :class:`UnsafePickleError`.

:func:`dumps_pyg` writes the same layout (PyG 2 ``Data`` holding a ``GlobalStorage``, or
the PyG 1 plain-attribute layout) from plain tensors, for tests and small exports.
"""

from __future__ import annotations

import copyreg
import io
import pickle
from collections import OrderedDict
from typing import Any

import numpy as np
import torch

__all__ = ["PygRecord", "SafeUnpickler", "UnsafePickleError", "dumps_pyg", "loads_pyg"]


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle names a global that is not on the allow-list."""


class PygRecord:
    """Inert stand-in for PyG's ``Data``/``GlobalStorage``: keeps the pickled state only."""

    def __init__(self, state: dict | None = None) -> None:
        self.__dict__["state"] = {} if state is None else state

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple):  # (dict state, slot state)
            state = {**(state[0] or {}), **(state[1] or {})}
        self.__dict__["state"] = dict(state)

    def fields(self) -> dict[str, Any]:
        """The data attributes: PyG 2 ``_store._mapping``, else the PyG 1 ``__dict__``."""
        store = self.state.get("_store")
        if isinstance(store, PygRecord):
            return dict(store.state.get("_mapping", {}))
        return {k: v for k, v in self.state.items() if not k.startswith("_")}


def _load_storage(data: bytes):
    """``torch.storage._load_from_bytes`` restricted to tensors and storages."""
    return torch.load(io.BytesIO(data), weights_only=True)


def _numpy_globals() -> dict[tuple[str, str], Any]:
    core = np._core if hasattr(np, "_core") else np.core  # numpy 2 / numpy 1
    out = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        out[(module, "_reconstruct")] = core.multiarray._reconstruct
        out[(module, "scalar")] = core.multiarray.scalar
    for name in ("Float64DType", "Float32DType", "Int64DType", "Int32DType", "BoolDType"):
        if hasattr(np.dtypes, name):
            out[("numpy.dtypes", name)] = getattr(np.dtypes, name)
    return out


_PYG_CLASSES = (
    ("torch_geometric.data.data", "Data"),
    ("torch_geometric.data.data", "DataEdgeAttr"),
    ("torch_geometric.data.data", "DataTensorAttr"),
    ("torch_geometric.data.storage", "GlobalStorage"),
    ("torch_geometric.data.storage", "BaseStorage"),
)
ALLOWED: dict[tuple[str, str], Any] = {
    **{key: PygRecord for key in _PYG_CLASSES},
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
    ("torch.storage", "_load_from_bytes"): _load_storage,
    ("collections", "OrderedDict"): OrderedDict,
    ("copyreg", "_reconstructor"): copyreg._reconstructor,
    ("builtins", "object"): object,
    **_numpy_globals(),
}


class SafeUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only :data:`ALLOWED` globals (and torch dtypes)."""

    def find_class(self, module: str, name: str) -> Any:
        """The allowed object named ``module.name``; raises :class:`UnsafePickleError` else."""
        found = ALLOWED.get((module, name))
        if found is not None:
            return found
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        raise UnsafePickleError(
            f"the pickle names {module}.{name}, which is not on equicat's allow-list (PyG "
            "Data, torch tensors, numpy arrays); refusing to load it. Convert the data with "
            "fairchem to equicat HDF5 if you trust the file."
        )


def loads_pyg(data: bytes) -> Any:
    """Unpickle one LMDB value with :class:`SafeUnpickler`."""
    return SafeUnpickler(io.BytesIO(data)).load()


class _PygPickler(pickle._Pickler):
    """Pure-Python pickler that names :class:`PygRecord` objects as PyG classes."""

    names: dict[int, tuple[str, str]] = {}

    def save_global(self, obj: Any, name: str | None = None) -> None:
        target = self.names.get(id(obj))
        if target is None:
            return super().save_global(obj, name)
        self.save(target[0])
        self.save(target[1])
        self.write(pickle.STACK_GLOBAL)
        self.memoize(obj)


class _Data(PygRecord):
    """Written as ``torch_geometric.data.data.Data``."""


class _Storage(PygRecord):
    """Written as ``torch_geometric.data.storage.GlobalStorage``."""


_PygPickler.names = {id(_Data): _PYG_CLASSES[0], id(_Storage): _PYG_CLASSES[3]}


def dumps_pyg(fields: dict[str, Any], layout: str = "pyg2") -> bytes:
    """Pickle ``fields`` as a PyG ``Data`` object (``layout`` ``"pyg2"`` or ``"pyg1"``).

    The bytes unpickle as a real ``Data`` where torch_geometric is installed.
    """
    data = _Data.__new__(_Data)
    if layout == "pyg2":
        store = _Storage.__new__(_Storage)
        store.__dict__.update({"_mapping": dict(fields), "_parent": data})
        data.__dict__.update({"_store": store})
    elif layout == "pyg1":
        data.__dict__.update({**fields, "__num_nodes__": None})
    else:
        raise ValueError(f"unknown PyG layout {layout!r}; use 'pyg2' or 'pyg1'")
    buffer = io.BytesIO()
    _PygPickler(buffer, protocol=4).dump(data)
    return buffer.getvalue()
