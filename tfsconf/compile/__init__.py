"""Compile: resolved environment -> bundle of per-host artifacts (pure, offline)."""

from tfsconf.compile.bundle import Bundle, build_bundle
from tfsconf.compile.output import Staleness, check_bundle, write_bundle

__all__ = ["Bundle", "Staleness", "build_bundle", "check_bundle", "write_bundle"]
