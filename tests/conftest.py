"""Root test configuration: shared fixtures live in tests/fixtures/ as pytest plugins."""

pytest_plugins = ["tests.fixtures.gateway", "tests.fixtures.kube", "tests.fixtures.engines"]
