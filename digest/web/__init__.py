"""The web app: the subscriber pages and /health."""
