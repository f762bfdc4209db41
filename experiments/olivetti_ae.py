"""Face recognition on the Olivetti faces: one denoising MLP autoencoder shared by every enrolled person.

Trained on the enrolled faces (faces 0-4 of each person, less one validation face each) and
shifted/mirrored copies of them; the probes (faces 5-9) are never seen. The faces task compares
the codes by the distance chosen on validation.

Commands:
    aejax train experiments/olivetti_ae.py --workdir runs/olivetti_ae
    aejax eval runs/olivetti_ae --task faces

Expected: see docs/evaluation.md (face recognition) for the measured numbers and times.
"""

from aejax.config import base_config


def get_config():
    c = base_config(kind="denoising", net="mlp")  # Gaussian corruption at level 0.2: the defaults
    c.data.name = "olivetti_faces"
    c.data.augment = 4
    c.model.hidden = (1024,)
    c.model.code_size = 256
    c.hp.learning_rate = 1e-3
    c.train.batch_size = 32
    c.train.epochs = 100
    c.train.checkpoint_every = 100
    return c
