"""The local Bud gateway: the Bud REST contract served for real from one process.

Start it with ``budai-gateway serve``; tests start it through
:class:`budai_gateway.testing.LocalGateway`.
"""

__version__ = "0.1.0"
