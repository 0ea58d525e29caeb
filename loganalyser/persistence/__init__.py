"""Checkpoints: atomic writes, the store on disk, what goes into a checkpoint and when."""
