"""Built-in diagnostics, one module per diagnostic."""
