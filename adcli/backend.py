"""Devices: which array module holds a tensor's numbers.

``cpu`` is NumPy; ``cuda`` / ``cuda:N`` is CuPy. This is the only module that
imports CuPy, and :func:`to_numpy` is the one place arrays are brought back to
the host. A :class:`Backend` is picked once per tensor (it travels with the
tensor), so ops never inspect arrays to find their module.
"""

from __future__ import annotations

import numpy as np

from adcli.errors import AdcliError

DTYPES = {"float32": np.float32, "float64": np.float64, "int64": np.int64, "bool": np.bool_}

CUDA_HINT = "install CuPy with: pip install 'adcli[cuda]'"


class Backend:
    """A device and its array module (``xp``)."""

    __slots__ = ("device_id", "is_cuda", "name", "xp")

    def __init__(self, name: str, xp, is_cuda: bool, device_id: int | None) -> None:
        self.name = name
        self.xp = xp
        self.is_cuda = is_cuda
        self.device_id = device_id

    def __repr__(self) -> str:
        return f"Backend({self.name!r})"

    def asarray(self, data, dtype=None):
        """An array of this device holding ``data`` (copied from the host if needed)."""
        if self.is_cuda:
            with self.xp.cuda.Device(self.device_id):
                return self.xp.asarray(data, dtype=dtype)
        return np.asarray(data, dtype=dtype)

    def scope(self):
        """A context in which new arrays land on this device."""
        if self.is_cuda:
            return self.xp.cuda.Device(self.device_id)
        return _NULL_SCOPE


class _NullScope:
    __slots__ = ()

    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


_NULL_SCOPE = _NullScope()
CPU = Backend("cpu", np, False, None)
_backends: dict[str, Backend] = {"cpu": CPU}


def _import_cupy():
    try:
        import cupy
    except Exception as exc:  # noqa: BLE001 - ImportError, or a broken CUDA install
        raise AdcliError(
            "device",
            f"device 'cuda' needs CuPy, which is not installed ({type(exc).__name__}); {CUDA_HINT}",
        ) from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception:  # noqa: BLE001 - no driver, no device: CuPy raises its own types
        count = 0
    if count == 0:
        raise AdcliError(
            "device",
            "device 'cuda' needs an NVIDIA GPU: CuPy is installed but no CUDA GPU is present",
            details={"unavailable_device": "cuda"},
        )
    return cupy, count


def get_backend(device: str | Backend | None) -> Backend:
    """The backend for a device name: ``cpu``, ``cuda`` (= ``cuda:0``) or ``cuda:N``."""
    if device is None:
        return CPU
    if isinstance(device, Backend):
        return device
    found = _backends.get(device)
    if found is not None:
        return found
    name = str(device).strip().lower()
    if name == "cuda":
        name = "cuda:0"
    if name in _backends:
        return _backends[name]
    digits = name[5:]
    # ASCII digits only ('²'.isdigit() too), and few enough for int() to read.
    if not name.startswith("cuda:") or not (digits.isascii() and digits.isdigit()):
        raise AdcliError("device", f"unknown device {device!r}: use 'cpu', 'cuda' or 'cuda:N'")
    if len(digits) > 6:
        raise AdcliError("device", f"device {name[:20]!r}... does not exist")
    index = int(name[5:])
    cupy, count = _import_cupy()
    if index >= count:
        raise AdcliError(
            "device",
            f"device {name!r} does not exist: this machine has {count} CUDA GPU(s)",
        )
    backend = Backend(name, cupy, True, index)
    _backends[name] = backend
    if device == "cuda":
        _backends["cuda"] = backend
    return backend


def cuda_available() -> bool:
    """Whether a CUDA device can be used (CuPy installed and a GPU present)."""
    try:
        _import_cupy()
    except AdcliError:
        return False
    return True


def array_module_of(array):
    """NumPy or CuPy: the module that made ``array`` (CuPy only if it is imported)."""
    if isinstance(array, (np.ndarray, np.generic)):
        return np
    return _import_cupy()[0]


def to_numpy(array) -> np.ndarray:
    """The one place arrays come back to the host as NumPy."""
    if isinstance(array, np.ndarray):
        return array
    if isinstance(array, np.generic):
        return np.asarray(array)
    get = getattr(array, "get", None)  # CuPy arrays
    if get is not None:
        return get()
    return np.asarray(array)


def resolve_dtype(dtype) -> np.dtype:
    """A NumPy dtype from a name (``float32``, ``float64``, ``int64``, ``bool``) or a dtype."""
    if dtype is None:
        return np.dtype(np.float32)
    if isinstance(dtype, str):
        found = DTYPES.get(dtype)
        if found is None:
            raise AdcliError(
                "value", f"unknown dtype {dtype!r}: use 'float32', 'float64', 'int64' or 'bool'"
            )
        return np.dtype(found)
    return np.dtype(dtype)
