"""Resolution: spec as written -> resolved environment (defaults layered, references followed)."""

from tfsconf.resolve.resolve import resolve_environment

__all__ = ["resolve_environment"]
