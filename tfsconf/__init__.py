"""tfsconf: a declarative config compiler for TensorFlow Serving fleets."""

__version__ = "0.1.0"
