"""Face recognition on the Olivetti faces: one denoising conv autoencoder shared by every enrolled person.

Trained on the enrolled faces (faces 0-4 of each person, less one validation face each) and
shifted/mirrored copies of them; the probes (faces 5-9) are never seen. The faces task compares
the codes, and the codes after an LDA fitted on the training codes, by the rule chosen on validation.

Commands:
    aejax train experiments/olivetti_ae.py --workdir runs/olivetti_ae
    aejax eval runs/olivetti_ae --task faces

Net: three 3x3 stride-2 convolutions (16, 32, 32 channels: 64x64 -> 8x8x32) -> code 256 (linear); the
decoder mirrors them. Gaussian corruption 0.2, 100 epochs, 800 training faces (160 and 4 altered copies each).

Why a conv net: the shared MLP (4096-1024-256) overfits the 160 faces (validation MSE 0.0041 against
0.0020 on training; PCA-64 of the same faces reaches 0.0029 on validation) and its codes + LDA stayed at
0.940 / EER 0.035. The conv encoder shares its weights over the face, reconstructs validation faces better
(0.0030) and its codes + LDA reach fisherfaces' level.

The seed was chosen on validation: the lowest validation cost (1 - rank-1) + EER of the headline
method, ties to the lower seed. Seeds 0 and 1 had been scored on test before that rule was written
down; seed 2 was trained afterwards to check the spread. Validation costs: 0.0026, 0, 0.038 (seeds
0, 1, 2); seed 1 is set below.

Measured (shared 2-core CPU; training 7 min 32 s, evaluation 1 min 43 s; up to 15 min 2 s and
7 min 51 s under heavier load), test split of 200 probes, seed 1: the codes + LDA (the headline,
chosen on validation) rank-1 0.975, EER 0.010, AUROC 0.9996, FRR at FAR 1% 0.010, ahead of
fisherfaces (0.970, 0.020, 0.9987, 0.035) on every number; the codes alone 0.875 / 0.050. The
margin is within the spread over seeds: seed 0 gives 0.970 / 0.0200 (a tie on rank-1, 0.0001
behind fisherfaces' 0.0199 on EER), seed 2 0.980 / 0.0190 (ahead on both).
docs/evaluation.md (face recognition) has the table and what was tried.
"""

from aejax.config import base_config


def get_config():
    c = base_config(kind="denoising", net="conv")  # Gaussian corruption at level 0.2: the defaults
    c.seed = 1  # chosen on validation among seeds 0-2 (see above)
    c.data.name = "olivetti_faces"
    c.data.augment = 4
    c.model.channels = (16, 32, 32)
    c.model.hidden = ()
    c.model.code_size = 256
    c.hp.learning_rate = 1e-3
    c.train.batch_size = 32
    c.train.epochs = 100
    c.train.checkpoint_every = 100
    return c
