"""Notify: alert events rendered and sent through apprise, with retries and routes."""
