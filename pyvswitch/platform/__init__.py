"""The machine description: TOML (stdlib tomllib) -> devices in a kernel.

Three files: ``parse`` (TOML -> validated device descriptions, against the one
schema in ``pyvswitch.schema``), ``description`` (``Platform``: loading and
queries), ``boot`` (the devices into a kernel).

A platform lists devices of the invention and around it - PCPUs, MEM, the
memory bus, the storage bus, the context store, the mover - each with its
compatible strings (most specific first), optional vendor/device ids, parent,
suppliers and parameters.  ``Platform.load(None)`` is the built-in reference
platform; more ship beside it (``Platform.builtin_names()``).

Nothing in a platform file is ever imported or executed: drivers come only
from registered modules, matched by the modaliases the devices announce.
"""
from __future__ import annotations

from ..schema import (
           DEVICE_CONTEXT_STORE,
           INVENTION,
           KINDS,
           STORAGE_BUS_TYPE,
           VARIANTS,
           VENDOR_VSW,
           kind_of,
)
from .boot import boot
from .description import DeviceSpec, Platform

__all__ = ["DEVICE_CONTEXT_STORE", "INVENTION", "KINDS", "STORAGE_BUS_TYPE", "VARIANTS", "VENDOR_VSW", "DeviceSpec",
           "Platform", "boot", "kind_of"]
