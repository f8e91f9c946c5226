"""One worker: listeners, connections, timeouts and the graceful drain."""
