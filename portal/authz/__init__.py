"""Authorization: the permission table and the guard on every view (permissions), scoped
queries (scopes), named role predicates (roles), security headers and rate limits."""
