"""The ``bybitkit`` command line."""
