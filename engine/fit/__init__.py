"""Fitting the card: what a training step costs and the plan that fits it.

memory     the step's peak GPU memory (and a CPU step's RAM), term by term, measured constants
planner    the request + the hardware + the data's lengths -> one frozen Plan, explained
card_fit   the plan of one run kept true to the card: calibration, the recovery ladder, plan.json
"""
