"""The page shell: headers, errors, CSRF, templates."""
