"""Production settings plus one bare view, the baseline the benchmarks compare against."""

from portal.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
