"""vitgallery: find similar photos in a personal library with a Vision Transformer."""

__version__ = "0.1.0"
