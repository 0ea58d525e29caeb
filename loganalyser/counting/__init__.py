"""Counting: bytes of a file -> statistics (the seed kernel, the formats, the reader of ranges and compressed streams)."""
