"""The ASGI side: one state machine per request, WebSocket or lifespan."""
