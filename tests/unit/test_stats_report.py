"""The dashboard's latency percentiles: buckets counted per request, quantiles as Prometheus's
histogram_quantile computes them."""
import math

import pytest

from feedapp.observability.metrics import LATENCY_BUCKETS, bucket_name
from feedapp.observability.report import latency, quantile


def test_bucket_names_are_upper_bounds_in_microseconds():
    assert bucket_name(0.0) == "250"
    assert bucket_name(0.00025) == "250"
    assert bucket_name(0.0003) == "500"
    assert bucket_name(LATENCY_BUCKETS[-1]) == str(round(LATENCY_BUCKETS[-1] * 1e6))
    assert bucket_name(10.0) == "inf"


def test_quantile_interpolates_within_the_bucket():
    buckets = [(0.25, 0), (0.5, 10), (1.0, 30), (math.inf, 0)]
    assert quantile(buckets, 0.5) == pytest.approx(0.5 + 0.5 * (20 - 10) / 30, abs=1e-3)
    assert quantile(buckets, 0.25) == 0.5  # rank 10 is the last of the second bucket
    assert quantile(buckets, 0.99) == pytest.approx(0.5 + 0.5 * (39.6 - 10) / 30, abs=1e-3)


def test_quantile_edges():
    assert quantile([], 0.5) is None
    assert quantile([(0.25, 0), (math.inf, 0)], 0.5) is None
    assert quantile([(0.25, 4)], 0.5) == 0.125  # from 0 to the first bound
    assert quantile([(0.25, 1), (0.5, 0), (math.inf, 9)], 0.9) == 0.5  # beyond the last bound


def test_latency_report_from_counters():
    counters = {"latency.250": 2, "latency.500": 6, "latency.inf": 2, "l1.hits.profile": 99}
    report = latency(counters)
    assert report["count"] == 10
    assert report["buckets"] == {"0.25": 2, "0.5": 6, "inf": 2}
    assert report["p50"] == quantile([(0.25, 2), (0.5, 6), (math.inf, 2)], 0.5) == 0.375
    assert report["p99"] == 0.5
