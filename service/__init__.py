"""ICCS offence coder: suggests ICCS v1.0 codes for free-text offence records."""

__version__ = "0.1.0"
