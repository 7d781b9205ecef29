"""sbiplug_cmpe (under construction)."""

__all__: list[str] = []
