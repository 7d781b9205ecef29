"""Built-in simulators, one module per task (sbibm's definitions)."""
