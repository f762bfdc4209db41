import pytest

from aejax.errors import ConfigError
from aejax.sweep import cross, expand, parse_grid, parse_shard, product, run_ids, zip_points
from aejax.sweep.spec import shard_slice


def test_product_zip_and_cross():
    assert product(**{"hp.beta": [1, 4], "seed": [0, 1]}) == [
        {"hp.beta": 1, "seed": 0}, {"hp.beta": 1, "seed": 1}, {"hp.beta": 4, "seed": 0}, {"hp.beta": 4, "seed": 1}]
    assert zip_points(**{"hp.beta": [1, 4], "hp.free_bits": [0.0, 0.1]}) == [
        {"hp.beta": 1, "hp.free_bits": 0.0}, {"hp.beta": 4, "hp.free_bits": 0.1}]
    assert len(cross(zip_points(a=[1, 2], b=[3, 4]), product(seed=range(3)))) == 6
    with pytest.raises(ConfigError, match="equal lengths"):
        zip_points(a=[1, 2], b=[3])


def test_grid_values_are_literals_and_tuples_use_semicolons():
    assert parse_grid(["hp.beta=1,4.5", "model.likelihood=bernoulli,gaussian"]) == {
        "hp.beta": [1, 4.5], "model.likelihood": ["bernoulli", "gaussian"]}
    assert parse_grid(["model.hidden=(64,32);(128,)"]) == {"model.hidden": [(64, 32), (128,)]}
    with pytest.raises(ConfigError, match="KEY=V1,V2"):
        parse_grid(["hp.beta"])


def test_grid_and_seeds_replace_the_files_sweep():
    file_points = [{"hp.beta": 2.0}]
    assert expand(file_points) == [{"hp.beta": 2.0}]
    assert expand(file_points, seeds=2) == [{"seed": 0}, {"seed": 1}]
    assert expand(file_points, grid=["hp.beta=1,4"], seeds=2) == [
        {"hp.beta": 1, "seed": 0}, {"hp.beta": 1, "seed": 1}, {"hp.beta": 4, "seed": 0}, {"hp.beta": 4, "seed": 1}]
    with pytest.raises(ConfigError, match="the sweep is empty"):
        expand(None)
    with pytest.raises(ConfigError, match="the sweep is empty"):
        expand([])


def test_run_ids_are_readable_unique_and_safe():
    assert run_ids([{"hp.beta": 4.0, "seed": 1}, {"model.hidden": (64, 32)}, {}]) == [
        "beta=4_seed=1", "hidden=64x32", "base"]
    assert run_ids([{"hp.sigma": 1}, {"model.sigma": 1}]) == ["hp.sigma=1", "model.sigma=1"]
    assert run_ids([{}, {}]) == ["base", "base_dup1"]


def test_duplicate_points_get_ids_that_do_not_read_as_values():
    points = [{"train.batch_size": 32}, {"train.batch_size": 64}, {"train.batch_size": 32}, {"train.batch_size": 32}]
    assert run_ids(points) == ["batch_size=32", "batch_size=64", "batch_size=32_dup1", "batch_size=32_dup2"]
    clash = [{"hp.sigma": 1}, {"model.sigma": 1}, {"hp.sigma": 1}]  # full keys for a clash, then the mark
    assert run_ids(clash) == ["hp.sigma=1", "model.sigma=1", "hp.sigma=1_dup1"]
    assert len(set(run_ids(points))) == len(points)


def test_shards_are_disjoint_and_cover_the_sweep():
    for n in (1, 2, 3, 7):
        covered = [i for k in range(n) for i in shard_slice(10, k, n)]
        assert covered == list(range(10))
    assert parse_shard("1/4", {}) == (1, 4)
    assert parse_shard(None, {"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "3"}) == (2, 3)
    assert parse_shard(None, {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "3",
                              "SLURM_ARRAY_TASK_MIN": "1"}) == (2, 3)
    assert parse_shard(None, {}) == (0, 1)
    for bad in ("4/4", "1/0", "a/b", "-1/2"):
        with pytest.raises(ConfigError, match="--shard"):
            parse_shard(bad, {})
