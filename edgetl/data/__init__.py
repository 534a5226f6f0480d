"""Data: image sources, splits, preprocessing and built-in datasets."""
