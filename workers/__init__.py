"""Celery app and thin task wrappers around the ``digest`` domain."""
