"""The operator JSON API under /api/v1: auth, typed requests/responses, errors, OpenAPI."""
