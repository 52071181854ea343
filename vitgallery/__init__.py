"""vitgallery: find similar photos in a personal library with a Vision Transformer."""

# The only place the version is written: pyproject reads it (dynamic version), so do --version and About.
__version__ = "0.1.0"
