"""Training machinery shared by the phases: schedule, divergence guard, checkpoints, loop."""
