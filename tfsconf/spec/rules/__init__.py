"""TF Serving's rules on the spec as written, checked offline (DOMAIN.md), each problem one
diagnostic.

Two passes here, both reporting into one Collector so that a run lists every problem:
- names: uniqueness and references, on the raw YAML data, before the schema pass;
- spec: version policies, paths, warmup settings, on the validated spec as written.
The third pass, on the resolved environment, runs after resolve (tfsconf/validate/).
"""

from tfsconf.spec.rules.collector import Collector
from tfsconf.spec.rules.names import check_names
from tfsconf.spec.rules.spec import check_models, check_references

__all__ = ["Collector", "check_models", "check_names", "check_references"]
