"""The JSON API under /api/v1 (one module per resource), its JSON views and its OpenAPI
document, plus the machine-readable /metrics."""
