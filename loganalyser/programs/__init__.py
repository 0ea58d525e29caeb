"""The three programs' front ends: options, planning, the final report."""
