"""Generation, evaluators and metrics."""
