"""The JSON API shell: OAuth, admin of clients, schemathesis, a journey through the API."""
