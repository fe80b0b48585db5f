"""Bounces and complaints: what receiving systems tell us about the mail we sent."""
