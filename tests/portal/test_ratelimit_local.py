"""The embedded default's in-process rate-limit counters keep only what is live, however long the process runs."""

from portal.kernel.ratelimit import LocalCounters


def test_expired_windows_are_dropped_so_the_table_follows_one_window_of_traffic():
    counters = LocalCounters()

    # A day of one new serial per second, each counted in a 60-second window.
    for second in range(86_400):
        counters.incr([(f"rl:activate-sn:{second}", second + 60.0)], now=float(second))

    assert len(counters._counts) <= 2 * LocalCounters.PRUNE_AT


def test_live_counts_survive_a_prune():
    counters = LocalCounters()
    counters.incr([("live", 1e12)], now=0.0)
    for n in range(LocalCounters.PRUNE_AT + 10):
        counters.incr([(f"dead-{n}", 1.0)], now=2.0)

    assert counters.incr([("live", 1e12)], now=3.0) == [2]
