pytest_plugins = ("oracles.pytest_plugin",)
