"""Studies: grids of cells, running them, the SQLite store, backends."""
