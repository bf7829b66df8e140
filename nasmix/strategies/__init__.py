"""Search strategies, one file each: one-shot (drive a supernet) and discrete (ask/tell)."""
