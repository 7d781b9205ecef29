"""Hook implementations of sbiplug_trade."""
