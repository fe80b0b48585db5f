"""Inbound mail: bounces, abuse reports and mailto unsubscribes received over SMTP."""
