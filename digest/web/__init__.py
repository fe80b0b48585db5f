"""The web app: subscriber pages (subscribe, confirm, preferences, feedback, unsubscribe) and /health."""
