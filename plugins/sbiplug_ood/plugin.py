"""Hook implementations of sbiplug_ood."""
