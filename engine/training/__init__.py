"""Training a LoRA adapter: the loop and what it needs around it.

train        the Trainer: setup, then the step loop (reads top to bottom as the recipe)
stream       which examples come next: the epoch order, the position, resuming it
steps        one optimizer step, the calibration probe and the evaluation, with their arithmetic
checkpoints  saving and restoring everything a resumed run needs
preflight    checks before the first step (vocabulary, too few rows)
"""
