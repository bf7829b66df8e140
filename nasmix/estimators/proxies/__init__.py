"""Zero-cost proxies, registered as kind `proxy`: functions that score an untrained network."""
