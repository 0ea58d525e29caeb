"""Statistics beyond level counts: time ranges and timelines, message templates,
breakdowns by file, host or component, and filters.

Every statistic is a pure function of each line (and of the file it is in), so
the statistics of any cut of the input into tasks add up to those of one pass
over the whole: they merge like counts, through checkpoints, handovers and
resumes. They are computed only when asked for; plain counting never pays.
"""

from .options import Analysis, AnalysisError, parse_bucket, parse_instant
from .stats import LineStats

__all__ = ["Analysis", "AnalysisError", "LineStats", "parse_bucket", "parse_instant"]
