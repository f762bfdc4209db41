from aejax.train.benchmark import benchmark_loop

from conftest import digits_config


def test_benchmark_reports_both_throughputs():
    result = benchmark_loop(digits_config(), epochs=3)
    assert {"fit_steps_per_s", "bare_scan_steps_per_s", "fit_over_bare", "backend"} <= set(result)
    assert result["fit_steps_per_s"] > 0 and result["bare_scan_steps_per_s"] > 0
    assert result["fit_over_bare"] == result["fit_steps_per_s"] / result["bare_scan_steps_per_s"]
