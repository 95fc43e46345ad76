"""Where JAX runs a fit: the CPU, a GPU, or JAX's default backend."""

from __future__ import annotations


import jax

from bayes_simrmf.errors import ConfigError
from bayes_simrmf.options import DEVICES


def select_device(name: str = "auto") -> jax.Device:
    """The JAX device a fit runs on: ``"auto"`` (JAX's default backend), ``"cpu"`` or ``"gpu"``.

    Use it as ``with jax.default_device(select_device("gpu")): ...``: arrays the fit creates and
    its compiled steps then live on that device.

    Raises:
        ConfigError: ``name`` is not one of :data:`DEVICES`, or JAX has no device of that platform
            (the message names what JAX sees and how to install a CUDA build).
    """
    if name not in DEVICES:
        raise ConfigError(f"device must be one of {', '.join(DEVICES)}; got {name!r}")
    if name == "auto":
        return jax.devices()[0]
    try:
        return jax.devices(name)[0]
    except RuntimeError:
        seen = ", ".join(sorted({f"{d.platform}:{d.id}" for d in jax.devices()}))
        raise ConfigError(
            f"device {name!r} requested but JAX (jax {jax.__version__}, default backend "
            f"{jax.default_backend()!r}) sees only {seen}; for an NVIDIA GPU install a CUDA build of JAX, "
            "pip install -U 'jax[cuda12]' (or 'jax[cuda13]' with a CUDA 13 driver), or use device 'cpu' or 'auto'"
        ) from None


