"""Delivery: who is due, the delivery ledger, and composing one reader's digest."""
