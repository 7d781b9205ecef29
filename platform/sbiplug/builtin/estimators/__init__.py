"""Built-in estimators: sbi's own methods exposed as specs."""
