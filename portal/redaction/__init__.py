"""Redaction: true redaction of text, PDFs and images, and the leak check that proves nothing
protected remains."""

from portal.redaction.parser_limits import limit_images

limit_images()  # every reader of uploaded images here: refuse decompression bombs
