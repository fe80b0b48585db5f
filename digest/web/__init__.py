"""The web app: health check now, subscriber pages in the flows issue."""
