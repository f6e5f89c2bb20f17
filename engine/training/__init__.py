"""Training a LoRA adapter: the loop and what it needs around it.

train        the Trainer: setup, then the step loop (reads top to bottom as the recipe)
objectives   what a step computes, one module per method: sft, preference (DPO, ORPO), grpo
stream       which examples come next: the epoch order, the position, the step's batches
optim        the optimizer, the learning-rate schedule and fp16's scaler, as one
steps        the calibration probe and the evaluation, and how every pass catches OOM
checkpoints  saving and restoring everything a resumed run needs
preflight    checks before the first step (vocabulary, what the data gave, too few rows, data vs method)
summary      summary.json from the finished (or stopped, or failed) run
"""
