"""The plugin API of the reference document, with coroutines."""

from __future__ import annotations

from .introspection import OSIProc
from .plugins import Plugin, Plugins, load_plugin_file, plugins
from .session import Session
from .trace import Tracer, TraceRecord

__all__ = [
    "plugins",
    "Plugin",
    "Session",
    "Tracer",
    "TraceRecord",
    "Plugins",
    "OSIProc",
    "load_plugin_file",
]
