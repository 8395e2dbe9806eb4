"""hwnas: hardware-in-the-loop profiling for neural architecture search."""
