"""The web app: the subscriber pages (subscribe, confirm, preferences, feedback,
unsubscribe) and /health."""
