"""Performance estimators, one file each: how a discrete strategy scores a candidate."""
