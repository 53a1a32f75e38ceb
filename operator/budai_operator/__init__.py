"""The Bud operator."""
