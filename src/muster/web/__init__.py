"""HTTP: turns requests into service calls and results into responses, nothing else."""
