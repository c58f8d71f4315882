"""Publishing, above the zoo and the exporter: Hub folders, ``snnzoo push`` and ``snnzoo pull``."""
