"""beta-VAE on Fashion-MNIST: MLP 784-512-256-16, Bernoulli likelihood, beta = 4 with a linear
KL warm-up over the first 5 epochs (2145 steps) and free bits.

The KL multiplier is hp.beta * schedule(step); the schedule is a function of the model's own
step counter, kept in its optimizer state (see aejax/models/vae.py). Validation and test
numbers always use the full weight. Variants:
    --set model.kl_schedule=cyclical --set model.kl_cycle_steps=1716   (4 cycles per 16 epochs)
    --set hp.beta=1.0 --set hp.free_bits=0.0                             (a plain VAE)

Commands:
    aejax train experiments/fmnist_beta_vae.py --workdir runs/fmnist_beta_vae
    aejax eval runs/fmnist_beta_vae --task generation
    aejax eval runs/fmnist_beta_vae --task likelihood --option num_samples=1000

Expected (2-core CPU): about 75-150 s; test loss (beta-weighted) 270.6, test ELBO -248.1 nats
(recon 240.6, KL 7.5, against 15.2 for the plain VAE), test MSE 0.0163.
"""

from aejax.config import base_config


def get_config():
    c = base_config()
    c.data.name = "fashion_mnist"
    c.data.val_size = 5000
    c.model.kind = "vae"
    c.model.net = "mlp"
    c.model.hidden = (512, 256)
    c.model.code_size = 16
    c.model.likelihood = "bernoulli"
    c.model.kl_schedule = "linear"
    c.model.kl_warmup_steps = 2145
    c.model.kl_cycle_steps = 1716
    c.model.kl_ramp_fraction = 0.5
    c.model.dynamic_binarization = False
    c.hp.learning_rate = 1e-3
    c.hp.beta = 4.0
    c.hp.free_bits = 0.05
    c.train.epochs = 16
    c.train.batch_size = 128
    c.train.checkpoint_every = 4
    c.lock()
    return c
