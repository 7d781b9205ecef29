"""sbiplug_trade (under construction)."""

__all__: list[str] = []
