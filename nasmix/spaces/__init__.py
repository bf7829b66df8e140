"""Search spaces (one file each), the shared primitives (ops.py) and mixed edges (supernet.py)."""
