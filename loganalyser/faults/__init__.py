"""Faults on purpose: injected (`--inject`) and feigned (`--chaos`) failures."""
