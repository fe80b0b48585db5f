"""Subscriptions: readers, their preferences, signed links, notices and feedback."""
