"""sbiplug_misspec (under construction)."""

__all__: list[str] = []
