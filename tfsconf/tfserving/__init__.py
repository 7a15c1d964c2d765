"""Facts about TF Serving itself (flags per release, image bases, warmup files), shared by
every stage. Nothing here imports the spec or the resolved model (ARCHITECTURE.md)."""
