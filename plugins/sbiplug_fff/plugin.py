"""Hook implementations of sbiplug_fff."""
