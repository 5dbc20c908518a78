"""The fictional demo."""
