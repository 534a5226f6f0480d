"""Data: image, text and audio sources, splits, preprocessing and built-in datasets."""
