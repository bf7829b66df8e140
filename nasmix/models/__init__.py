"""Hand-designed reference networks (one file each), registered as kind `model`."""
