"""Face recognition on the Olivetti faces: one denoising MLP autoencoder per enrolled person.

Each run trains on one person's enrolled faces only (`data.normal_class` = the person: 4 training
faces, 1 validation face, and shifted/mirrored copies of the training faces); the sweep is the
40 people. The faces task scores a probe under every person's model by its reconstruction error,
normalised as chosen on validation (the primer's "reconstruction loss relative to the genuine
examples"). The 40 people train as one population, one compiled program: each member's examples are an
index table over the one dataset (`data.normal_class` chooses rows, it does not split the sweep).

Commands:
    aejax sweep experiments/olivetti_person.py --workdir sweeps/olivetti_person
    aejax eval sweeps/olivetti_person --task faces

Why this kind and net: the same denoising MLP as the shared model, narrow (4096-256-16) because each
model sees 20 faces (4 enrolled training faces and 16 altered copies).

Measured (shared 2-core CPU under heavy load; the sweep as one population and its evaluation 13 min 44 s
in all, 3 min 34 s of user CPU; as 40 groups one after another, before per-member data: 17 min 6 s and
81 s), test split of 200 probes: rank-1 0.825, EER 0.127, AUROC 0.9463, FRR at FAR 1% 0.380
(z-normalised errors, chosen on validation); the linear twin, per-person PCA, 0.880 / 0.105;
fisherfaces 0.970 / 0.020. docs/evaluation.md (face recognition) has the table.
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
