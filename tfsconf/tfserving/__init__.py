"""Facts about TF Serving itself (flags, releases) that compile and validation share."""
