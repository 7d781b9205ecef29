"""sbiplug_fff (under construction)."""

__all__: list[str] = []
