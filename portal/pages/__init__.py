"""What every domain's pages are built from: error responses, forms, PDF responses, value
formatting.

Below the domains (they import it); :mod:`portal.web` wires the app on top."""
