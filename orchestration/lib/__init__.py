"""Reusable wiring shared by the domain modules under orchestration/defs/."""
