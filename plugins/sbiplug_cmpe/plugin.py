"""Hook implementations of sbiplug_cmpe."""
