"""sbiplug_ood (under construction)."""

__all__: list[str] = []
