"""The environment spec as written: safe YAML loading with positions, the pydantic model,
and the TF Serving rules checked offline."""
