"""TF Serving's rules, checked offline (DOMAIN.md), each problem one diagnostic.

Three passes, all reporting into one Collector so that a run lists every problem:
- names: uniqueness and references, on the raw YAML data, before the schema pass;
- spec: version policies, paths, warmup settings, on the validated spec as written;
- resolved: placement, ports, GPUs, batching and flags on the resolved environment, each
  diagnostic at the origin of the value that broke the rule.
"""

from tfsconf.spec.rules.collector import Collector
from tfsconf.spec.rules.names import check_names
from tfsconf.spec.rules.resolved import check_resolved
from tfsconf.spec.rules.spec import check_models, check_references

__all__ = ["Collector", "check_models", "check_names", "check_references", "check_resolved"]
