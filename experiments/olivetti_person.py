"""Face recognition on the Olivetti faces: one denoising MLP autoencoder per enrolled person.

Each run trains on one person's enrolled faces only (`data.normal_class` = the person: 4 training
faces, 1 validation face, and shifted/mirrored copies of the training faces); the sweep is the
40 people. The faces task scores a probe under every person's model by its reconstruction error,
normalised as chosen on validation (the primer's "reconstruction loss relative to the genuine
examples"). Today the sweep trains 40 groups one after another (they differ in which examples they
see); with per-member data (issue 29) the same file trains them as one program.

Commands:
    aejax sweep experiments/olivetti_person.py --workdir sweeps/olivetti_person
    aejax eval sweeps/olivetti_person --task faces

Expected: see docs/evaluation.md (face recognition) for the measured numbers and times.
"""

from aejax.config import base_config
from aejax.sweep import product


def get_config():
    c = base_config(kind="denoising", net="mlp")  # Gaussian corruption at level 0.2: the defaults
    c.data.name = "olivetti_faces"
    c.data.augment = 4
    c.data.normal_class = 0
    c.model.hidden = (256,)
    c.model.code_size = 16
    c.hp.learning_rate = 1e-3
    c.train.batch_size = 20
    c.train.epochs = 200
    c.train.checkpoint_every = 200
    c.train.figures = False
    return c


def sweep():
    return product(**{"data.normal_class": list(range(40))})
