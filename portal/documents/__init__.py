"""Documents the portal renders: the decision page's data and the decision PDF."""
