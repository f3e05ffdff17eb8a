"""Shop-local calendars: the injectable clock, which local day an instant falls on, and the
periods the API answers for.
"""
