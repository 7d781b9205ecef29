"""Simulators whose parameters live on manifolds: a direction, two angles, a rotation."""

__all__: list[str] = []
