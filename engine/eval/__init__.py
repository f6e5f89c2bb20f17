"""Measuring a model beyond its training loss: short greedy answers in batches
(generate.py) and the forgetting meter, a built-in probe of general ability (probe.py)."""
