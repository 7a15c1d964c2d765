"""Validation, the stage after resolve: load an environment file (YAML with positions ->
spec rules -> schema -> resolve) and check the resolved environment, so that every command
starts from a spec that TF Serving's rules accept."""
