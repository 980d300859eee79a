"""The models a tenant may ask for: `GET /v1/models`."""
