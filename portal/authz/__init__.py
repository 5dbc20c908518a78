"""Authorization: the permission table, scoped queries, the guard on every view, security headers
and rate limits."""
