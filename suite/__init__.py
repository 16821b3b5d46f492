"""Deep-learning benchmarking suite: standardized tasks, architecture families, tuning, tracking."""

__version__ = "0.1.0"
