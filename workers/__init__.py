"""RQ entry points. Each job is thin: load -> media operation -> store -> advance state."""
