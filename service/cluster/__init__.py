"""Many nodes: the registry of web processes and what they share through Redis."""
