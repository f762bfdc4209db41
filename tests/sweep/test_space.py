"""Sampled search spaces: parsing, one-line errors, determinism, plain values, coverage of the space."""

import math
import warnings

import numpy as np
import pytest
from scipy import stats
from scipy.stats import qmc

from aejax.errors import ConfigError
from aejax.sweep.space import (SAMPLERS, Choice, IntLogUniform, IntUniform, LogUniform, Range, Uniform, as_distribution,
                               continuous_keys, explorable_keys, explore, parse_distribution, parse_space,
                               sample_points)

SPACE = {"hp.learning_rate": "loguniform(1e-4,1e-1)", "hp.beta": Uniform(0, 4), "model.code_size": "choice(8,16,32)",
         "model.hidden": "choice((64, 32), (128,))", "model.net": "choice(mlp, 'conv')",
         "train.batch_size": "intloguniform(16, 256)", "model.depth": IntUniform(1, 3)}


# -- parsing ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("loguniform(1e-4,1e-1)", LogUniform(1e-4, 1e-1)),
    (" uniform( 0 , 1 ) ", Uniform(0.0, 1.0)),
    ("uniform(low=-1, high=1)", Uniform(-1.0, 1.0)),
    ("uniform(-1, high=1)", Uniform(-1.0, 1.0)),
    ("intuniform(1,8)", IntUniform(1, 8)),
    ("intuniform(1e1, 1e2)", IntUniform(10, 100)),
    ("intloguniform(8,256)", IntLogUniform(8, 256)),
    ("choice(8,16,32)", Choice(8, 16, 32)),
    ("choice((64,32),(128,),'x',None,True,2.5)", Choice((64, 32), (128,), "x", None, True, 2.5)),
    ("choice(mlp,conv)", Choice("mlp", "conv")),
    ("choice(7)", Choice(7)),
])
def test_distributions_parse_from_text_as_in_python(text, expected):
    dist = parse_distribution(text)
    assert dist == expected
    assert parse_distribution(str(dist)) == dist  # str() is text that parses back to the same distribution
    assert as_distribution(dist) is dist


def test_bounds_are_plain_python_numbers():
    assert type(Uniform(0, 1).low) is float and type(LogUniform(1, 10).high) is float
    assert type(IntUniform(1.0, 4).low) is int and type(IntLogUniform(np.int64(2), 9).low) is int


@pytest.mark.parametrize("text, message", [
    ("logunifrom(1e-4,1e-1)", r"unknown distribution 'logunifrom'.*did you mean 'loguniform'\?"),
    ("unifrom(0,1)", r"did you mean 'uniform'\?"),
    ("intlogunifrom(8,256)", r"did you mean 'intloguniform'\?"),
    ("choise(8,16)", r"did you mean 'choice'\?"),
    ("normal(0,1)", r"unknown distribution 'normal'.*choose one of"),
    ("uniform(0)", r"uniform takes 2 arguments \(low, high\), got 1"),
    ("loguniform(1e-4,1e-2,1e-1)", r"loguniform takes 2 arguments \(low, high\), got 3"),
    ("intuniform()", r"intuniform takes 2 arguments"),
    ("uniform(0, low=1)", r"uniform takes 2 arguments"),
    ("uniform(0, top=1)", r"uniform takes low, high, not 'top'"),
    ("uniform(1,0)", r"uniform\(1, 0\): low must be below high"),
    ("uniform(1,1)", r"low must be below high"),
    ("intuniform(5,2)", r"intuniform\(5, 2\): low must be below high"),
    ("loguniform(0,1)", r"loguniform\(0, 1\): a log distribution needs 0 < low, got low=0"),
    ("log_uniform(1e-4,1e-1)", r"did you mean 'loguniform'\?"),
    ("loguniform(-1e-3,1)", r"needs 0 < low"),
    ("intloguniform(0,8)", r"intloguniform\(0, 8\): a log distribution needs 0 < low"),
    ("intuniform(1.5,4)", r"intuniform: low must be an integer, got 1.5"),
    ("uniform(0, inf)", r"uniform: high must be a finite number, got 'inf'"),
    ("uniform(0, '1')", r"high must be a finite number"),
    ("uniform(True, 2)", r"low must be a finite number"),
    ("choice()", r"choice\(\) needs at least one value"),
    ("choice(size=8)", r"choice takes values only"),
    ("uniform(0, 2 ** 3)", r"arguments must be literals"),
    ("uniform(0, x.y)", r"arguments must be literals"),
    ("0.1", r"'0.1' is not a distribution; write loguniform\(1e-4,1e-1\)"),
    ("loguniform[1e-4,1e-1]", r"is not a distribution"),
    ("loguniform(1e-4,", r"is not a distribution"),
])
def test_bad_distributions_are_one_line_config_errors(text, message):
    with pytest.raises(ConfigError, match=message) as info:
        parse_distribution(text)
    assert "\n" not in str(info.value)


def test_python_construction_checks_the_same_things():
    for make, message in [(lambda: Uniform(1, 0), "low must be below high"),
                          (lambda: LogUniform(0, 1), "0 < low"),
                          (lambda: IntLogUniform(-2, 4), "0 < low"),
                          (lambda: IntUniform(0, 2.5), "high must be an integer"),
                          (lambda: Uniform(0, float("nan")), "finite"),
                          (lambda: Choice(), "at least one value")]:
        with pytest.raises(ConfigError, match=message):
            make()


def test_spaces_from_files_and_command_lines():
    from_file = parse_space(SPACE)
    assert from_file["hp.learning_rate"] == LogUniform(1e-4, 1e-1) and from_file["hp.beta"] is SPACE["hp.beta"]
    from_cli = parse_space(["hp.learning_rate=loguniform(1e-4,1e-1)", "model.code_size = choice(8,16,32)"])
    assert from_cli == {"hp.learning_rate": LogUniform(1e-4, 1e-1), "model.code_size": Choice(8, 16, 32)}
    for spec, message in [(["hp.learning_rate"], r"'hp.learning_rate' is not KEY=DIST"),
                          (["hp.beta=uniform(0,1)", "hp.beta=uniform(0,2)"], r"'hp.beta' is given twice"),
                          (["hp.lr=logunifrom(1e-4,1e-1)"], r"^hp.lr: unknown distribution.*did you mean 'loguniform'"),
                          ({"hp.beta": 0.5}, r"^hp.beta: 0.5 is not a distribution"),
                          ({"hp.beta": [1, 2]}, r"^hp.beta: \[1, 2\] is not a distribution"),
                          ({"": "uniform(0,1)"}, r"dotted config keys")]:
        with pytest.raises(ConfigError, match=message) as info:
            parse_space(spec)
        assert "\n" not in str(info.value)


def test_explorable_and_continuous_keys():
    assert continuous_keys(SPACE) == ["hp.beta", "hp.learning_rate"]
    assert continuous_keys({"model.code_size": "choice(8,16)"}) == []
    space = {**SPACE, "hp.sigma": "choice(0.1, 0.2, 0.5)", "hp.k": "intuniform(1, 9)", "hp.one": "choice(3)"}
    assert explorable_keys(space) == ["hp.beta", "hp.k", "hp.learning_rate", "hp.sigma"]  # no model.*, no 1-choice
    assert explorable_keys({"model.code_size": "choice(8,16)", "hp.one": "choice(3)"}) == []


def test_the_four_ranges_are_one_range_with_flags():
    assert LogUniform(1e-4, 0.1) == Range(1e-4, 0.1, log=True) and IntLogUniform(2, 9) == Range(2, 9, True, True)
    assert [str(d) for d in (Uniform(0, 1), LogUniform(1, 2), IntUniform(1, 2), IntLogUniform(1, 2))] == [
        "uniform(0.0, 1.0)", "loguniform(1.0, 2.0)", "intuniform(1, 2)", "intloguniform(1, 2)"]


# the points of every sampler as drawn before the four range classes became one Range (sha256 of all 108)
BEFORE = {"random/0": [(3.551136029553816, 0.0001613867331135565, -3, 2, (2, 3)),
                       (6.171177984138357, 0.005199743558243884, 8, 48, (2, 3))],
          "sobol/1": [(0.2186070391908288, 5.3473421882939866e-05, 6, 10, "x"),
                      (3.5928095802664757, 0.0981713033989568, 4, 291, "x")],
          "halton/7": [(6.752325799462257, 0.18180494973008526, 0, 3, "x"),
                       (2.0023257994622563, 0.005851024967771924, 6, 9, (2, 3))]}
BEFORE_SHA256 = "c5f24b280a014222c3df732343a31ee7bf60037a72d1ee33b3a050a6f522242e"


def test_sampled_points_are_bit_for_bit_those_of_before():
    import hashlib
    import json

    space = {"a": "uniform(-2.5,7)", "b": "loguniform(1e-5,0.3)", "c": "intuniform(-3,12)",
             "d": "intloguniform(2,700)", "e": "choice(1,'x',(2,3))"}
    drawn = {f"{s}/{seed}": sample_points(space, 12, sampler=s, seed=seed) for s in SAMPLERS for seed in (0, 1, 7)}
    for name, points in BEFORE.items():
        assert [tuple(p.values()) for p in drawn[name][:2]] == points
    text = json.dumps(json.loads(json.dumps(drawn, default=repr)), sort_keys=True)
    assert hashlib.sha256(text.encode()).hexdigest() == BEFORE_SHA256


# -- PBT's explore step -------------------------------------------------------------------------------

def _explored(dist, value, n=400, **options):
    rng = np.random.default_rng(0)
    return [explore(dist, value, rng=rng, **{"perturb": (0.8, 1.2), **options}) for _ in range(n)]


def test_explore_multiplies_a_float_by_a_factor_or_resamples():
    values = _explored("loguniform(1e-4, 1e-1)", 1e-2)
    perturbed = [v for v in values if math.isclose(v, 8e-3) or math.isclose(v, 1.2e-2)]
    assert 0.65 < len(perturbed) / len(values) < 0.85  # 1 - 0.25, the rest resampled inside the space
    assert all(1e-4 <= v <= 1e-1 and type(v) is float for v in values)
    assert len(set(values) - set(perturbed)) > 50
    assert set(_explored("uniform(0, 1)", 0.5, resample_probability=0.0)) == {0.4, 0.6}
    assert all(v != 0.5 for v in _explored("uniform(0, 1)", 0.5, resample_probability=1.0))


def test_explore_clips_to_the_bounds():
    assert set(_explored("uniform(0, 1)", 0.95, resample_probability=0.0)) == {0.76, 1.0}
    assert set(_explored("loguniform(1e-3, 1e-1)", 1e-3, resample_probability=0.0)) == {1e-3, 1.2e-3}


def test_explore_rounds_and_clips_integers():
    assert set(_explored("intuniform(1, 12)", 10, resample_probability=0.0)) == {8, 12}
    assert set(_explored("intuniform(1, 11)", 10, resample_probability=0.0)) == {8, 11}
    assert set(_explored("intloguniform(2, 64)", 5, resample_probability=0.0)) == {4, 6}  # 6.0 and 4.0
    values = _explored("intuniform(1, 12)", 10)
    assert all(type(v) is int and 1 <= v <= 12 for v in values) and len(set(values)) > 6


def test_explore_steps_a_choice_to_a_neighbour_or_resamples():
    dist = Choice(1e-3, 3e-3, 1e-2, 3e-2)
    assert set(_explored(dist, 3e-3, resample_probability=0.0)) == {1e-3, 1e-2}
    assert set(_explored(dist, 1e-3, resample_probability=0.0)) == {3e-3}  # at an end: its only neighbour
    assert set(_explored(dist, 3e-2, resample_probability=0.0)) == {1e-2}
    assert set(_explored(dist, float(np.float32(3e-3)), resample_probability=0.0)) == {1e-3, 1e-2}  # float32 trip
    assert set(_explored(dist, 1e-2)) == set(dist.values)  # resampling reaches every value
    lists = _explored(Choice([1, 2], [3]), [1, 2], n=20, resample_probability=0.0)
    assert lists[0] == [3] and lists[0] is not lists[1]
    with pytest.raises(ConfigError, match="not one of the choice's values"):
        explore(Choice("a", "b"), "c", rng=np.random.default_rng(0), perturb=(0.8, 1.2), resample_probability=0.0)


def test_explore_is_deterministic_in_the_generator():
    first = _explored("loguniform(1e-4, 1e-1)", 1e-2, n=50)
    assert first == _explored("loguniform(1e-4, 1e-1)", 1e-2, n=50)


# -- sampling: determinism and values -----------------------------------------------------------------

@pytest.mark.parametrize("sampler", SAMPLERS)
def test_points_are_deterministic_in_the_seed(sampler):
    points = sample_points(SPACE, 12, sampler=sampler, seed=3)
    assert len(points) == 12 and all(sorted(p) == sorted(SPACE) for p in points)
    assert sample_points(SPACE, 12, sampler=sampler, seed=3) == points
    assert sample_points(dict(reversed(list(SPACE.items()))), 12, sampler=sampler, seed=3) == points  # key order
    other = sample_points(SPACE, 12, sampler=sampler, seed=4)
    assert [p["hp.learning_rate"] for p in other] != [p["hp.learning_rate"] for p in points]
    assert [p["hp.beta"] for p in other] != [p["hp.beta"] for p in points]


def test_samplers_differ_from_each_other():
    draws = {s: [p["hp.beta"] for p in sample_points(SPACE, 8, sampler=s, seed=0)] for s in SAMPLERS}
    assert len({tuple(v) for v in draws.values()}) == 3


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_values_are_plain_python_values_of_the_right_type(sampler):
    for point in sample_points(SPACE, 16, sampler=sampler, seed=0):
        assert type(point["hp.learning_rate"]) is float and type(point["hp.beta"]) is float
        assert type(point["train.batch_size"]) is int and type(point["model.depth"]) is int
        assert type(point["model.code_size"]) is int and type(point["model.net"]) is str
        assert type(point["model.hidden"]) is tuple
    # a float key stays float even where the bounds are written as ints
    assert all(type(p["x"]) is float for p in sample_points({"x": "uniform(1, 3)"}, 8, sampler=sampler))


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_values_stay_inside_their_bounds(sampler):
    points = sample_points(SPACE, 256, sampler=sampler, seed=1)
    assert all(1e-4 <= p["hp.learning_rate"] <= 1e-1 and 0.0 <= p["hp.beta"] <= 4.0 for p in points)
    assert all(16 <= p["train.batch_size"] <= 256 and 1 <= p["model.depth"] <= 3 for p in points)


def test_sobol_takes_any_n_without_a_warning_and_its_points_are_a_prefix():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ten = sample_points({"x": "uniform(0,1)", "y": "uniform(0,1)"}, 10, sampler="sobol", seed=5)
    sixteen = sample_points({"x": "uniform(0,1)", "y": "uniform(0,1)"}, 16, sampler="sobol", seed=5)
    assert ten == sixteen[:10]
    assert len(sample_points({"x": "uniform(0,1)"}, 1, sampler="sobol", seed=0)) == 1


@pytest.mark.parametrize("call, message", [
    (lambda: sample_points(SPACE, 4, sampler="sobel"), r"unknown sampler 'sobel'; did you mean 'sobol'\?"),
    (lambda: sample_points(SPACE, 4, sampler="grid"), r"unknown sampler 'grid'; choose one of"),
    (lambda: sample_points(SPACE, 0), r"positive integer, got 0"),
    (lambda: sample_points(SPACE, 2.5), r"positive integer, got 2.5"),
    (lambda: sample_points(SPACE, 4, seed=-1), r"non-negative integer"),
    (lambda: sample_points({}, 4), r"the search space is empty"),
    (lambda: sample_points({"hp.beta": "unifrom(0,1)"}, 4), r"^hp.beta: unknown distribution.*'uniform'"),
])
def test_bad_sampling_requests_are_config_errors(call, message):
    with pytest.raises(ConfigError, match=message):
        call()


# -- sampling: coverage -------------------------------------------------------------------------------

def _unit_square(sampler, seed, n=64):
    points = sample_points({"a": "uniform(0,1)", "b": "uniform(0,1)"}, n, sampler=sampler, seed=seed)
    return np.array([[p["a"], p["b"]] for p in points])


@pytest.mark.parametrize("sampler", ["sobol", "halton"])
def test_quasi_random_points_cover_the_square_better_than_random(sampler):
    seeds = range(5)
    random_disc = [qmc.discrepancy(_unit_square("random", s)) for s in seeds]
    quasi_disc = [qmc.discrepancy(_unit_square(sampler, s)) for s in seeds]
    assert max(quasi_disc) < min(random_disc) / 5, (quasi_disc, random_disc)

    def max_gap(x):
        return np.diff(np.sort(np.concatenate([[0.0], x, [1.0]]))).max()

    random_gap = np.mean([max_gap(_unit_square("random", s)[:, 0]) for s in seeds])
    quasi_gap = max(max_gap(_unit_square(sampler, s)[:, 0]) for s in seeds)
    assert quasi_gap <= 2 / 64 < random_gap, (quasi_gap, random_gap)  # 64 points: no gap wider than 2 cells


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_loguniform_logs_are_uniform(sampler):
    values = np.array([p["lr"] for p in sample_points({"lr": "loguniform(1e-5,1e-1)"}, 1000, sampler=sampler,
                                                      seed=0)])
    u = (np.log(values) - math.log(1e-5)) / (math.log(1e-1) - math.log(1e-5))
    assert stats.kstest(u, "uniform").pvalue > 0.01
    # not uniform in the values themselves: most of them lie below a tenth of the range
    assert np.mean(values < 1e-2) > 0.7


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_integer_bounds_are_inclusive_and_reached(sampler):
    points = sample_points({"n": "intuniform(2,5)", "m": "intloguniform(1,8)"}, 400, sampler=sampler, seed=2)
    n = np.array([p["n"] for p in points])
    m = np.array([p["m"] for p in points])
    assert set(n) == {2, 3, 4, 5} and set(m) == set(range(1, 9))
    counts = np.bincount(n - 2, minlength=4)
    assert stats.chisquare(counts).pvalue > 0.01  # each of the 4 values equally likely
    # floor of a log-uniform on [1, 9): P(k) = log((k + 1) / k) / log(9)
    expected = np.array([math.log((k + 1) / k) / math.log(9) for k in range(1, 9)]) * len(m)
    assert stats.chisquare(np.bincount(m - 1, minlength=8), expected).pvalue > 0.01


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_choice_covers_every_value(sampler):
    values = ("a", 2, (3, 4), None, 5.5)
    points = sample_points({"c": Choice(*values)}, 50, sampler=sampler, seed=0)
    seen = [p["c"] for p in points]
    assert all(seen.count(v) >= 5 for v in values), seen


def test_a_sampled_choice_of_lists_gives_each_point_its_own_copy():
    dist = Choice([64, 32], [128])
    points = sample_points({"model.hidden": dist}, 6, seed=0)
    same = [p["model.hidden"] for p in points if p["model.hidden"] == [64, 32]]
    assert len(same) >= 2
    same[0].append(1)  # a point changed in place changes no other point, and not the space
    assert same[1] == [64, 32] and dist.values == ([64, 32], [128])


def test_explore_step_says_which_factor_it_drew():
    from aejax.sweep.space import explore_step

    rng = np.random.default_rng(1)
    steps = [explore_step("loguniform(1e-4, 1e-1)", 1e-2, rng=rng, perturb=(0.8, 1.2)) for _ in range(200)]
    assert all(f is None or math.isclose(v, 1e-2 * f) for v, f in steps)
    assert {f for _, f in steps} == {None, 0.8, 1.2}
    assert explore_step(Choice(1, 2, 3), 2, rng=rng, perturb=(0.8,), resample_probability=0.0)[1] is None
