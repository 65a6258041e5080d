"""Long-lived work of the service that is not HTTP: session control, exports, transcription,
live captions, the off-air watch, slates and the gateway processes. Nothing here imports
aiohttp."""
