"""The local Bud gateway."""
