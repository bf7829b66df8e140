"""Datasets (one file each), their splits and the device-resident loader.

Example:
    >>> from nasmix.data import load_dataset
    >>> data = load_dataset("synthetic")
    >>> data.task.num_classes
    10
"""

from nasmix.data.base import (
    Dataset,
    DatasetArrays,
    ImageArrays,
    Task,
    check_path_use,
    load_dataset,
    resolve_path,
    search_split,
    subset,
    with_subsets,
)
from nasmix.data.loader import Augment, DeviceLoader

__all__ = [
    "Augment",
    "Dataset",
    "DatasetArrays",
    "DeviceLoader",
    "ImageArrays",
    "Task",
    "check_path_use",
    "load_dataset",
    "resolve_path",
    "search_split",
    "subset",
    "with_subsets",
]
