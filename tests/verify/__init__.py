"""portal-verify and the stock-tool recipe."""
