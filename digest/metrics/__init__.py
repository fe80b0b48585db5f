"""What an operator watches: Prometheus metrics and the figures ``digest status`` prints."""
