"""Job functions for the Python scenarios: importable by name by the RQ worker (a forked work horse)."""


def add(a, b):
    """A job that succeeds with a result the scenario checks."""
    return a + b


def fail(message):
    """A job that raises, so that RQ moves it to the failed job registry."""
    raise ValueError(message)
