"""Supervisor report pages: queues, agents and calls over a range of days, with CSV exports."""
