"""colour_patches: real scikit-learn photographs, disjoint held-out bands, fixed-seed draws, bad options."""

import numpy as np
import pytest

from aejax.config import get_experiment_config
from aejax.data import colour, load_dataset
from aejax.data.colour import BANDS, band_corners, load_colour_patches
from aejax.errors import ConfigError
from aejax.train.setup import config_dataset

OPTIONS = {"patch_size": 8, "patch_stride": 8, "val_size": 40, "test_size": 80}


@pytest.fixture(scope="module")
def patches():
    return load_dataset("colour_patches", split_seed=0, **OPTIONS)


def test_patches_are_rgb_floats_in_unit_range_from_both_images(patches):
    assert patches.name == "colour_patches" and patches.num_classes == 2
    assert patches.input_shape == (8, 8, 3)
    assert (len(patches.val), len(patches.test)) == (40, 80)
    for split in (patches.train, patches.val, patches.test):
        assert split.x.dtype == np.float32 and 0.0 <= split.x.min() and split.x.max() <= 1.0
    assert set(np.unique(patches.train.y)) == {0, 1}
    # 427 x 448 training band per image on an 8-pixel grid: 53 rows x 56 columns of patches each.
    assert len(patches.train) == 2 * 53 * 56
    # Real photographs: the colour channels differ (not a gray image).
    assert np.mean(np.abs(patches.train.x[..., 0] - patches.train.x[..., 2])) > 0.05


def _pixel_coordinates(image_index, height=40, width=100):
    """A synthetic 'photograph' whose pixels encode (row, column, image) exactly in [0, 1]."""
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    return np.stack([rows / 255.0, cols / 255.0, np.full_like(rows, image_index) / 255.0], -1).astype(np.float32)


def test_held_out_patches_share_no_pixel_with_training_patches(monkeypatch):
    monkeypatch.setattr(colour, "sample_images", lambda: [_pixel_coordinates(0), _pixel_coordinates(1)])
    data = load_colour_patches(patch_size=6, patch_stride=2, val_size=20, test_size=40, split_seed=3)

    def pixels(split):
        coords = np.rint(split.x.reshape(-1, 3) * 255).astype(int)
        return set(map(tuple, coords))

    train, val, test = pixels(data.train), pixels(data.val), pixels(data.test)
    assert not train & test and not train & val and not val & test
    assert max(c for _, c, _ in train) < min(c for _, c, _ in val) < min(c for _, c, _ in test)
    assert {i for *_, i in test} == {0, 1}  # both images give test patches


def test_band_grids_stay_inside_their_bands():
    for band, (start, stop) in BANDS.items():
        corners = band_corners(427, 640, band, patch_size=32, patch_stride=8)
        assert corners[:, 1].min() >= round(start * 640) and corners[:, 1].max() + 32 <= round(stop * 640)
        assert corners[:, 0].max() + 32 <= 427


def test_draws_are_fixed_by_the_seed(patches):
    again = load_colour_patches(split_seed=0, **OPTIONS)
    other = load_colour_patches(split_seed=1, **OPTIONS)
    np.testing.assert_array_equal(again.test.x, patches.test.x)
    np.testing.assert_array_equal(again.val.x, patches.val.x)
    np.testing.assert_array_equal(other.train.x, patches.train.x)  # the training band is used whole
    assert not np.array_equal(other.test.x, patches.test.x)


def test_config_options_reach_the_loader():
    config = get_experiment_config("colour_colorization", {"data.patch_size": 8, "data.patch_stride": 8,
                                                           "data.test_size": 10})
    data = config_dataset(config.data)
    assert data.input_shape == (8, 8, 3) and len(data.test) == 10


@pytest.mark.parametrize(("options", "message"), [
    ({"patch_size": 2}, "data.patch_size must be between 4 and 64"),
    ({"patch_stride": 0}, r"data.patch_stride must be between 1 and data.patch_size \(8\)"),
    ({"test_size": 10**6}, r"the test band .* holds \d+ patches .* data.test_size must be in"),
    ({"val_size": 0}, r"data.val_size must be in \[1, \d+\]"),
])
def test_bad_options_are_errors(options, message):
    with pytest.raises(ConfigError, match=message):
        load_colour_patches(**{**OPTIONS, **options})
