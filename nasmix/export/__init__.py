"""Found networks as standalone models: `nasmix export`, `load_model`, `create_model`.

See docs/export.md. `codegen` writes the torch-only source (into `template`), `artifacts` the
weights, .pt2 and ONNX files, `card` the model card, `source` reads the store
and checkpoints, `exporter` puts them together and `hub` loads the results.
"""

from nasmix.export.exporter import export_arch, export_cell
from nasmix.export.hub import create_model, load_model

__all__ = ["create_model", "export_arch", "export_cell", "load_model"]
