"""The bully election (seeds 000, 001) as a pure state machine, and a simulated network to test it on."""
