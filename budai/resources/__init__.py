"""API resources, one module each, with the sync and async classes side by side.

Modules are imported on first use by the clients (``client.models`` imports ``.models``), so this
package deliberately re-exports nothing eagerly.
"""
