"""Dataset sources, splits, corruptions and masks."""

from aejax.data.arrays import arrays_dataset, load_arrays
from aejax.data.corruptions import CORRUPTIONS, check_level, corrupt, get_corruption
from aejax.data.datasets import (Dataset, Split, check_images, download_fashion_mnist, fashion_mnist_search_path,
                                 find_fashion_mnist, restrict_to_class)
from aejax.data.faces import download_olivetti, find_olivetti, load_olivetti_faces
from aejax.data.idx import read_idx, write_idx
from aejax.data.sources import SOURCES, load_dataset, source_options

__all__ = ["CORRUPTIONS", "SOURCES", "Dataset", "Split", "arrays_dataset", "check_images", "check_level",
           "corrupt",
           "download_fashion_mnist", "download_olivetti", "find_olivetti", "load_olivetti_faces",
           "find_fashion_mnist", "fashion_mnist_search_path", "get_corruption",
           "load_arrays", "load_dataset", "read_idx", "restrict_to_class", "source_options", "write_idx"]
