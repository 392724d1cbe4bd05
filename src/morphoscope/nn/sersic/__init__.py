"""SersicNet: Sérsic parameters with uncertainties from a cutout (encoder-decoder)."""
