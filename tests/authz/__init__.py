"""Authorization: every endpoint as every visitor, and the scoped queries."""
