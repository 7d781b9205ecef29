"""The host's built-in plugins: sbibm simulators, sbi's estimators and the standard diagnostics."""
