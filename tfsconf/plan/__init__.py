"""plan: what a change to an environment does to each host and server, and what it costs."""
