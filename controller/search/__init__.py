"""Device-specific architecture searches: LINAS, NSGA-II and random baselines, hypervolume, outputs."""
