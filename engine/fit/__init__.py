"""Fitting the card: what a training step costs and the plan that fits it.

memory     the step's peak GPU memory (and a CPU step's RAM), term by term, measured constants
plan       the frozen Plan a run uses, and the budgets (card, RAM) it is made against
planner    the request + the hardware + the data's lengths -> one Plan, explained in words
card_fit   the plan of one run kept true to the card: calibration, the recovery ladder, plan.json
"""
