"""Watching a job: the event log, the live status document and who shows it
(a file, a web dashboard, a terminal view). Everything here takes plain
documents; the master decides what goes in them."""
