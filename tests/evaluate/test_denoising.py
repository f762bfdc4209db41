"""PSNR and SSIM against direct numpy computations; the denoising task on a short digits run."""

import dataclasses
import os
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aejax.config import get_experiment_config
from aejax.errors import ConfigError
from aejax.evaluate import evaluate_workdir, load_run
from aejax.evaluate.denoising import denoising_task, psnr, snr_db, ssim
from aejax.train import fit

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _ssim_numpy(a, b, window=11, sigma=1.5, c1=1e-4, c2=9e-4):
    """SSIM of two single-channel images, written out position by position (Wang et al. 2004)."""
    r = np.arange(window) - (window - 1) / 2
    g = np.exp(-0.5 * (r / sigma) ** 2)
    w = np.outer(g, g) / np.sum(g) ** 2
    vals = []
    for i in range(a.shape[0] - window + 1):
        for j in range(a.shape[1] - window + 1):
            pa, pb = a[i:i + window, j:j + window], b[i:i + window, j:j + window]
            ma, mb = np.sum(w * pa), np.sum(w * pb)
            va, vb = np.sum(w * pa * pa) - ma ** 2, np.sum(w * pb * pb) - mb ** 2
            cov = np.sum(w * pa * pb) - ma * mb
            vals.append(((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2)))
    return np.mean(vals)


def test_psnr_matches_formula():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(4, 6, 6, 1)).astype(np.float32)
    y = np.clip(x + rng.normal(scale=0.1, size=x.shape), 0, 1).astype(np.float32)
    mse = ((x - y) ** 2).reshape(4, -1).mean(axis=1)
    np.testing.assert_allclose(psnr(jnp.asarray(y), jnp.asarray(x)), 10 * np.log10(1 / mse), rtol=1e-5)


def test_ssim_matches_direct_computation():
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(3, 14, 13, 1)).astype(np.float32)
    y = np.clip(x + rng.normal(scale=0.2, size=x.shape), 0, 1).astype(np.float32)
    got = np.asarray(ssim(jnp.asarray(y), jnp.asarray(x)))
    expected = [_ssim_numpy(y[i, ..., 0].astype(np.float64), x[i, ..., 0].astype(np.float64)) for i in range(3)]
    np.testing.assert_allclose(got, expected, rtol=1e-4)


def test_ssim_identity_symmetry_and_order():
    x = jax.random.uniform(jax.random.key(0), (5, 16, 16, 1))
    noisy = jnp.clip(x + 0.1 * jax.random.normal(jax.random.key(1), x.shape), 0, 1)
    noisier = jnp.clip(x + 0.3 * jax.random.normal(jax.random.key(2), x.shape), 0, 1)
    np.testing.assert_allclose(ssim(x, x), 1.0, rtol=1e-6)
    np.testing.assert_allclose(ssim(noisy, x), ssim(x, noisy), rtol=1e-6)
    assert np.all(np.asarray(ssim(noisier, x)) < np.asarray(ssim(noisy, x)))
    small = jax.random.uniform(jax.random.key(3), (2, 8, 8, 1))  # smaller than the 11x11 window
    np.testing.assert_allclose(ssim(small, small), 1.0, rtol=1e-6)


def test_ssim_shape_mismatch_is_an_error():
    with pytest.raises(ConfigError, match="same shape"):
        ssim(jnp.zeros((2, 8, 8, 1)), jnp.zeros((2, 8, 7, 1)))


@pytest.fixture(scope="module")
def denoising_run(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("dae"))
    overrides = {"train.epochs": 12, "train.progress": False, "train.figures": False, "train.tensorboard": False,
                 "train.checkpoint_every": 12}
    fit(get_experiment_config(os.path.join(REPO, "experiments", "digits_denoising.py"), overrides), workdir)
    return workdir


def _task(run, **options):
    return denoising_task(run.model, run.params, run.dataset, run.hp, seed=0,
                          out_dir=os.path.join(run.workdir, "figures"), **options)


@dataclasses.dataclass(frozen=True)
class _GreyModel:
    """Reconstructs every input as a uniform 0.5 image: its MSE against the clean images is known."""

    name = "grey"

    def reconstruct(self, params, batch):
        return jnp.full_like(batch["x"], 0.5)


def test_psnr_by_value_in_dB():
    x = np.zeros((2, 4, 4, 1), np.float32)
    y = x + np.float32(0.1)  # MSE 0.01 -> 20 dB; 0.001 -> 30 dB
    y[1] = np.sqrt(0.001)
    np.testing.assert_allclose(psnr(jnp.asarray(y), jnp.asarray(x)), [20.0, 30.0], rtol=1e-5)


def test_task_headline_psnr_is_ten_log10_of_the_inverse_mse(tmp_path):
    x = np.random.default_rng(0).uniform(size=(30, 8, 8, 1)).astype(np.float32)
    dataset = types.SimpleNamespace(test=types.SimpleNamespace(x=x, y=np.zeros(30, np.int32)))
    res = denoising_task(_GreyModel(), None, dataset, {}, seed=0, out_dir=str(tmp_path), levels={"gaussian": (0.2,)})
    mse = np.mean((x.astype(np.float64) - 0.5) ** 2)  # the grey output does not depend on the noise
    assert res["test/mse"] == pytest.approx(mse, rel=1e-5)
    assert res["test/psnr"] == pytest.approx(10 * np.log10(1 / mse), rel=1e-5)
    assert res["test/gaussian@0.2/psnr"] == pytest.approx(10 * np.log10(1 / mse), rel=1e-5)
    assert all(os.path.isfile(p) for p in res["figures"])


def test_denoising_task_scores_grid_and_figures(denoising_run):
    run = load_run(denoising_run)
    levels = {"gaussian": (0.2, 0.4), "masking": (0.25,), "salt_and_pepper": (0.1,)}
    results = _task(run, levels=levels)
    assert results["corruption"] == "gaussian" and results["level"] == pytest.approx(0.2)
    # The trained denoiser beats the corrupted input at its training level.
    assert results["test/psnr"] > results["test/input_psnr"] + 1.0
    assert results["test/ssim"] > results["test/input_ssim"]
    assert results["test/gaussian@0.2/psnr"] == results["test/psnr"]
    assert results["test/gaussian@0.4/input_psnr"] < results["test/gaussian@0.2/input_psnr"]
    assert len(results["grid"]) == 4
    assert np.isfinite(results["test/salt_and_pepper@0.1/input_psnr"])
    for path in results["figures"]:
        assert os.path.isfile(path)


def test_denoising_task_through_evaluate_workdir(denoising_run):
    results = evaluate_workdir(denoising_run, "denoising", levels={"masking": (0.5,)}, max_examples=100)
    assert "test/masking@0.5/psnr" in results
    with open(os.path.join(denoising_run, "report.md"), encoding="utf-8") as f:
        assert "test/psnr" in f.read()


def test_denoising_task_bad_level_is_an_error(denoising_run):
    run = load_run(denoising_run)
    with pytest.raises(ConfigError, match="sigma must be >= 0"):
        _task(run, level=-1.0)
    with pytest.raises(ConfigError, match=r"must lie in \[0, 1\]"):
        _task(run, levels={"masking": (1.5,)})


# -- 1-D data: SNR improvement -------------------------------------------------------------------


def _offset_sines(n=64, t=128, seed=0):
    """Sines around the 0.5 centre the sequence sources store waveforms at: [n, t, 1], power a^2 / 2."""
    rng = np.random.default_rng(seed)
    amp = rng.uniform(0.1, 0.3, n)
    time = np.arange(t)
    x = 0.5 + amp[:, None] * np.sin(2 * np.pi * rng.integers(2, 30, n)[:, None] * time / t)
    return x[..., None].astype(np.float32), amp ** 2 / 2


def test_snr_by_value_ignores_the_offset():
    x, power = _offset_sines()
    error = np.where(np.arange(128) % 2 == 0, 0.01, -0.01)[None, :, None].astype(np.float32)  # power 1e-4
    expected = 10 * np.log10(power / 1e-4)
    np.testing.assert_allclose(snr_db(jnp.asarray(x + error), jnp.asarray(x)), expected, atol=1e-3)
    assert np.isinf(np.asarray(snr_db(jnp.asarray(x), jnp.asarray(x)))).all()


@dataclasses.dataclass(frozen=True)
class _Identity:
    """Returns its noisy input: a denoiser that changes nothing improves the SNR by exactly 0 dB."""

    name = "identity"

    def reconstruct(self, params, batch):
        return batch["x"]


def test_identity_denoiser_improves_the_snr_by_zero_db_and_writes_figures_and_wavs(tmp_path):
    x, _ = _offset_sines(n=400)
    dataset = types.SimpleNamespace(test=types.SimpleNamespace(x=x, y=np.zeros(len(x), np.int32)), scaling=None)
    res = denoising_task(_Identity(), None, dataset, {}, seed=0, out_dir=str(tmp_path), wav_examples=2,
                         levels={"white_snr": (0.0, 10.0), "pink_snr": (5.0,)})
    assert (res["corruption"], res["level"]) == ("white_snr", 0.0)  # the defaults for 1-D data
    assert res["test/snr_improvement"] == 0.0 and res["test/snr_out"] == res["test/snr_in"]
    # The input SNR is the requested one: the mean of 10 log10(chi-square ratio) is within 0.2 dB at T = 128.
    assert abs(res["test/snr_in"]) < 0.2 and abs(res["test/white_snr@10/snr_in"] - 10) < 0.2
    assert abs(res["test/pink_snr@5/snr_in"] - 5) < 0.3
    assert [(r["corruption"], r["level"]) for r in res["grid"]] == [("white_snr", 0.0), ("white_snr", 10.0),
                                                                   ("pink_snr", 5.0)]
    assert len(res["wav_files"]) == 6 and all(os.path.isfile(p) for p in res["wav_files"] + res["figures"])


@dataclasses.dataclass(frozen=True)
class _Shrink:
    """Pulls its noisy input half-way to the frame's channel mean: a crude denoiser, never exact."""

    name = "shrink"

    def reconstruct(self, params, batch):
        x = batch["x"]
        return 0.5 * x + 0.5 * jnp.mean(x, axis=1, keepdims=True)


def test_silent_frames_are_left_out_of_the_snr_and_counted(tmp_path):
    """Constant frames (silence at the 0.5 centre, zero padding) have no signal power, so no SNR: they used to
    make snr_in, snr_out and the improvement NaN for the whole split. They are skipped and counted."""
    voiced, _ = _offset_sines(n=300)
    silent = np.concatenate([np.full((3, 128, 1), 0.5, np.float32), np.zeros((2, 128, 1), np.float32)])
    x = np.concatenate([voiced[:100], silent[:3], voiced[100:], silent[3:]])
    dataset = types.SimpleNamespace(test=types.SimpleNamespace(x=x, y=np.zeros(len(x), np.int32)), scaling=None)
    res = denoising_task(_Shrink(), None, dataset, {}, seed=0, out_dir=str(tmp_path), batch_size=64,
                         levels={"white_snr": (0.0, 10.0), "pink_snr": (5.0,)})
    scalars = {k: v for k, v in res.items() if k.startswith("test/")}
    assert all(np.isfinite(v) for v in scalars.values()), scalars
    assert res["test/silent_frames"] == 5 and res["test/white_snr@10/silent_frames"] == 5
    assert all(row["silent_frames"] == 5 for row in res["grid"])
    assert abs(res["test/snr_in"]) < 0.25 and abs(res["test/white_snr@10/snr_in"] - 10) < 0.25  # voiced frames
    assert res["test/snr_improvement"] == pytest.approx(res["test/snr_out"] - res["test/snr_in"])
    # the voiced frames alone give the same scores within sampling error, and no silent frame to count
    alone = denoising_task(_Shrink(), None, types.SimpleNamespace(
        test=types.SimpleNamespace(x=voiced, y=np.zeros(len(voiced), np.int32)), scaling=None), {}, seed=0,
        out_dir=str(tmp_path / "alone"), batch_size=64, levels={"white_snr": (0.0,)})
    assert alone["test/silent_frames"] == 0
    assert abs(alone["test/snr_improvement"] - res["test/snr_improvement"]) < 0.1
    from aejax.evaluate.report import render_section

    assert "| test/silent_frames | 5 |" in render_section(str(tmp_path), "denoising", res, command="aejax eval w")


def test_snr_of_a_silent_frame_is_nan_and_an_all_silent_split_is_an_error(tmp_path):
    from aejax.errors import DataError

    clean = jnp.stack([jnp.full((16, 1), 0.3), jnp.linspace(0.0, 1.0, 16)[:, None]])
    snr = np.asarray(snr_db(clean + 0.01, clean))
    assert np.isnan(snr[0]) and np.isfinite(snr[1])
    dataset = types.SimpleNamespace(test=types.SimpleNamespace(x=np.zeros((6, 32, 1), np.float32),
                                                               y=np.zeros(6, np.int32)), scaling=None)
    with pytest.raises(DataError, match="all 6 test frames are silent"):
        denoising_task(_Identity(), None, dataset, {}, seed=0, out_dir=str(tmp_path))


def test_sequence_denoising_bad_options_are_errors(tmp_path):
    x, _ = _offset_sines(n=8)
    stereo = np.concatenate([x, x], axis=-1)
    for data, options, message in [(stereo, {"wav_examples": 1}, r"WAV examples need single-channel sequences"),
                                   (x, {"wav_examples": -1}, "wav_examples must be >= 0"),
                                   (x, {"levels": {"white_snr": (float("nan"),)}}, "level must be finite")]:
        dataset = types.SimpleNamespace(test=types.SimpleNamespace(x=data, y=np.zeros(8, np.int32)))
        with pytest.raises(ConfigError, match=message):
            denoising_task(_Identity(), None, dataset, {}, seed=0, out_dir=str(tmp_path), **options)


@pytest.fixture(scope="module")
def audio_run(tmp_path_factory):
    """The audio experiment shrunk to seconds: 64-sample frames, a small MLP, 3 epochs."""
    workdir = str(tmp_path_factory.mktemp("audio"))
    overrides = {"data.frame_length": 64, "data.train_size": 512, "data.val_size": 64, "data.test_size": 128,
                 "model.hidden": (64,), "model.code_size": 16, "train.epochs": 3, "train.batch_size": 64,
                 "train.progress": False, "train.figures": False, "train.tensorboard": False,
                 "train.checkpoint_every": 3}
    fit(get_experiment_config("audio_denoising", overrides), workdir)
    return workdir


def test_audio_run_reports_snr_grid_through_evaluate_workdir(audio_run):
    results = evaluate_workdir(audio_run, "denoising", levels={"white_snr": (0.0, 10.0)}, wav_examples=1)
    assert {"test/snr_in", "test/snr_out", "test/snr_improvement", "test/white_snr@10/snr_out"} <= set(results)
    assert results["test/snr_improvement"] == pytest.approx(results["test/snr_out"] - results["test/snr_in"])
    with open(os.path.join(audio_run, "report.md"), encoding="utf-8") as f:
        report = f.read()
    assert "SNR in dB, denoised / input" in report and "denoising_waveforms.png" in report
    assert os.path.isfile(os.path.join(audio_run, "figures", "audio", "example0_denoised.wav"))
