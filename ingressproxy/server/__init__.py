"""Settings, the uvicorn server and its protocols, listeners, TLS, workers and the reloader."""
