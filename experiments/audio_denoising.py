"""Audio denoising: a denoising MLP autoencoder on 32 ms frames of synthetic 8 kHz audio at 0 dB SNR.

Data: `synthetic_audio`, 20000 training frames of 256 samples (tones, chirps and their mixtures,
generated from data.split_seed; no download). The `white_snr` corruption adds white Gaussian noise
on the device at hp.noise_level = 0 dB, the noise power equal to each frame's own signal power;
the 256-1024-512-K GELU MLP reconstructs the clean frame.

Commands:
    aejax train experiments/audio_denoising.py --workdir runs/audio_denoising
    aejax eval runs/audio_denoising --task denoising --option wav_examples=3

The denoising task reports the SNR improvement (output SNR minus input SNR, dB) over a grid of
input SNRs, a waveform figure and WAV files; measured numbers in docs/audio_and_colour.md.
The variant `audio_denoising:pink` trains and scores on pink (1/f) noise instead.
"""

from aejax.config import base_config, with_variant

VARIANTS = {
    "pink": {"model.corruption": "pink_snr"},
}


def get_config(variant=None):
    c = base_config(kind="denoising", net="mlp")
    c.data.name = "synthetic_audio"
    c.data.sample_rate = 8000
    c.data.frame_length = 256
    c.data.train_size = 20000
    c.data.val_size = 500
    c.data.test_size = 1000
    c.model.corruption = "white_snr"
    c.model.hidden = (1024, 512)
    c.model.code_size = 128
    c.hp.noise_level = 0.0
    c.hp.learning_rate = 1e-3
    c.train.epochs = 20
    c.train.checkpoint_every = 10
    return with_variant(c, variant, VARIANTS)
