"""Hook implementations of sbiplug_misspec."""
