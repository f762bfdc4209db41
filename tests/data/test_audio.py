"""synthetic_audio: frame shapes, kinds, frequencies inside the band, fixed seeds, WAV files, bad options."""

import wave

import numpy as np
import pytest

from aejax.config import get_experiment_config
from aejax.data import load_dataset
from aejax.data.audio import load_synthetic_audio, synth_frames, write_wav
from aejax.data.datasets import series_values
from aejax.errors import ConfigError, DataError
from aejax.train.setup import config_dataset

OPTIONS = {"frame_length": 256, "sample_rate": 8000, "train_size": 90, "val_size": 12, "test_size": 30}


@pytest.fixture(scope="module")
def audio():
    return load_dataset("synthetic_audio", split_seed=0, **OPTIONS)


def test_frames_are_standardized_single_channel_sequences_of_every_kind(audio):
    assert audio.name == "synthetic_audio" and audio.num_classes == 3
    assert audio.input_shape == (256, 1)
    assert (len(audio.train), len(audio.val), len(audio.test)) == (90, 12, 30)
    assert set(np.unique(audio.train.y)) == {0, 1, 2}
    for split in (audio.train, audio.val, audio.test):
        assert split.x.dtype == np.float32 and 0.0 < split.x.min() and split.x.max() < 1.0
    waves = series_values(audio.train.x, audio.scaling)  # back in waveform units
    peaks = np.abs(waves).max(axis=(1, 2))
    assert peaks.min() > 0.3 - 1e-6 and peaks.max() < 0.9 + 1e-6
    assert abs(waves.mean()) < 0.02 and waves.std() == pytest.approx(audio.scaling[1][0], rel=1e-6)


def test_every_frame_has_its_energy_inside_the_generated_band():
    frames, labels = synth_frames(300, frame_length=256, sample_rate=8000, rng=np.random.default_rng(4))
    spectrum = np.abs(np.fft.rfft(frames * np.hanning(256), axis=1)) ** 2
    freqs_hz = np.fft.rfftfreq(256, 1 / 8000)
    inside = (freqs_hz >= 90) & (freqs_hz <= 1900)  # glides span 110 to 1760 Hz; a few bins of leakage
    assert np.all(spectrum[:, inside].sum(1) / spectrum.sum(1) > 0.95)
    # A tone of one sine puts most of its energy in a few bins; a chirp spreads it over the sweep.
    top3 = np.sort(spectrum, axis=1)[:, -3:].sum(1) / spectrum.sum(1)
    assert np.median(top3[labels == 0]) > np.median(top3[labels == 1])


def test_frames_are_fixed_by_the_seed(audio):
    again = load_synthetic_audio(split_seed=0, **OPTIONS)
    other = load_synthetic_audio(split_seed=1, **OPTIONS)
    np.testing.assert_array_equal(again.test.x, audio.test.x)
    np.testing.assert_array_equal(again.train.y, audio.train.y)
    assert not np.allclose(other.train.x, audio.train.x)


def test_config_options_reach_the_loader():
    config = get_experiment_config("audio_denoising", {"data.frame_length": 64, "data.train_size": 20,
                                                       "data.val_size": 5, "data.test_size": 7})
    data = config_dataset(config.data)
    assert data.input_shape == (64, 1) and (len(data.train), len(data.test)) == (20, 7)


def test_wav_files_hold_the_waveform_at_the_sample_rate(tmp_path, audio):
    waveform = series_values(audio.test.x[0], audio.scaling)[:, 0]
    path = write_wav(str(tmp_path / "clip.wav"), waveform, 8000)
    with wave.open(path, "rb") as f:
        assert (f.getnchannels(), f.getsampwidth(), f.getframerate(), f.getnframes()) == (1, 2, 8000, 256)
        pcm = np.frombuffer(f.readframes(256), "<i2").astype(np.float64)
    assert np.abs(pcm).max() == round(0.9 * 32767)
    np.testing.assert_allclose(pcm, waveform * 0.9 * 32767 / np.abs(waveform).max(), atol=0.51)
    with pytest.raises(DataError, match="holds NaN or infinite samples"):
        write_wav(str(tmp_path / "bad.wav"), np.array([0.0, np.nan]), 8000)


@pytest.mark.parametrize(("options", "message"), [
    ({"sample_rate": 2000}, r"data.sample_rate must be between 4000 and 48000 Hz \(the glides reach 1760 Hz\), got 2000"),
    ({"frame_length": 8}, "data.frame_length must be between 16 and 8192 samples, got 8"),
    ({"train_size": 0}, "data.train_size must be at least 1 frame"),
])
def test_bad_options_are_errors(options, message):
    with pytest.raises(ConfigError, match=message):
        load_synthetic_audio(**{**OPTIONS, **options})
