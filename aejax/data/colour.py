"""`colour_patches`: square RGB patches cut from the colour photographs shipped inside scikit-learn.

The source images are scikit-learn's `load_sample_images()`: china.jpg and flower.jpg, each
427 x 640 x 3 (CC BY 2.0, see sklearn/datasets/images/README.txt); nothing is downloaded.
scikit-image's bundled images are not used (scikit-image is not a dependency).

Splits hold out a region of every image, so no test or validation patch shares a pixel with a
training patch: the columns of each image are cut into a training band (the left 70 %), a
validation band (the next 10 %) and a test band (the right 20 %). Patches of side `patch_size`
lie wholly inside one band, on a grid of step `patch_stride` pixels. Training uses every grid
patch of its bands; validation and test draw `val_size` and `test_size` patches from theirs
without replacement, with a permutation fixed by `split_seed`. Pixels are float32 in [0, 1];
the label of a patch is the index of its source image (0 china, 1 flower).
"""

from __future__ import annotations

import numpy as np

from aejax.data.datasets import Dataset, Split
from aejax.errors import ConfigError

# Column bands of each image as fractions of its width: [start, stop).
BANDS = {"train": (0.0, 0.7), "val": (0.7, 0.8), "test": (0.8, 1.0)}
IMAGE_NAMES = ("china.jpg", "flower.jpg")


def sample_images() -> list[np.ndarray]:
    """scikit-learn's sample photographs as float32 arrays [H, W, 3] in [0, 1], in `IMAGE_NAMES` order."""
    from sklearn.datasets import load_sample_images

    bunch = load_sample_images()
    by_name = {path.replace("\\", "/").rsplit("/", 1)[-1]: image for path, image in zip(bunch.filenames, bunch.images)}
    return [by_name[name].astype(np.float32) / 255.0 for name in IMAGE_NAMES]


def band_corners(height: int, width: int, band: str, *, patch_size: int, patch_stride: int) -> np.ndarray:
    """Top-left corners [P, 2] (row, col) of the grid patches lying wholly inside `band` of an image."""
    start, stop = (round(f * width) for f in BANDS[band])
    rows = np.arange(0, height - patch_size + 1, patch_stride)
    cols = np.arange(start, stop - patch_size + 1, patch_stride)
    return np.stack(np.meshgrid(rows, cols, indexing="ij"), -1).reshape(-1, 2)


def cut_patches(image_HxWx3: np.ndarray, corners_Px2: np.ndarray, patch_size: int) -> np.ndarray:
    """The patches [P, patch_size, patch_size, 3] at the given top-left corners."""
    return np.stack([image_HxWx3[r:r + patch_size, c:c + patch_size] for r, c in corners_Px2])


def _band_split(images: list[np.ndarray], band: str, *, patch_size: int, patch_stride: int,
                size: int | None, seed: int) -> Split:
    xs, ys = [], []
    for label, image in enumerate(images):
        corners = band_corners(*image.shape[:2], band, patch_size=patch_size, patch_stride=patch_stride)
        xs.append(cut_patches(image, corners, patch_size))
        ys.append(np.full(len(corners), label, np.int32))
    x, y = np.concatenate(xs), np.concatenate(ys)
    if size is None:
        return Split(x, y)
    if not 0 < size <= len(x):
        raise ConfigError(f"the {band} band of the colour images holds {len(x)} patches of side {patch_size} at "
                          f"stride {patch_stride}, so data.{band}_size must be in [1, {len(x)}], got {size}; "
                          "lower it or lower data.patch_stride.")
    pick = np.sort(np.random.default_rng(seed).permutation(len(x))[:size])
    return Split(x[pick], y[pick])


def load_colour_patches(*, patch_size: int = 32, patch_stride: int = 8, val_size: int = 180,
                        test_size: int = 360, split_seed: int = 0) -> Dataset:
    """Colour patches [N, patch_size, patch_size, 3] of scikit-learn's sample photographs (see the module doc).

    Args:
      patch_size: side of the square patches in pixels (4 to 64).
      patch_stride: step of the patch grid in pixels (1 to patch_size; smaller gives more, overlapping patches).
      val_size, test_size: patches drawn from the validation and test bands.
      split_seed: fixes which validation and test patches are drawn.
    """
    patch_size, patch_stride = int(patch_size), int(patch_stride)
    if not 4 <= patch_size <= 64:
        raise ConfigError(f"data.patch_size must be between 4 and 64 pixels for colour_patches, got {patch_size}.")
    if not 1 <= patch_stride <= patch_size:
        raise ConfigError(f"data.patch_stride must be between 1 and data.patch_size ({patch_size}), "
                          f"got {patch_stride}.")
    images = sample_images()
    common = {"patch_size": patch_size, "patch_stride": patch_stride}
    train = _band_split(images, "train", size=None, seed=split_seed, **common)
    val = _band_split(images, "val", size=int(val_size), seed=split_seed, **common)
    test = _band_split(images, "test", size=int(test_size), seed=split_seed + 1, **common)
    return Dataset("colour_patches", train, val, test, num_classes=len(images),
                   source="scikit-learn sample images: " + ", ".join(IMAGE_NAMES))
