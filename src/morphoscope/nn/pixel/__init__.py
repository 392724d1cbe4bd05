"""PixelClassifier: per-pixel morphological classes from a U-Net."""
