"""Dataset sources, splits, corruptions and masks."""

from aejax.data.datasets import (SOURCES, Dataset, Split, check_images, download_fashion_mnist,
                                 find_fashion_mnist, fashion_mnist_search_path, load_dataset)
from aejax.data.idx import read_idx, write_idx

__all__ = ["SOURCES", "Dataset", "Split", "check_images", "download_fashion_mnist", "find_fashion_mnist",
           "fashion_mnist_search_path", "load_dataset", "read_idx", "write_idx"]
