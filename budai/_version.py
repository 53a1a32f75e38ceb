"""The SDK version (kept in step with pyproject.toml; a test checks they agree)."""

__version__ = "0.1.0"
