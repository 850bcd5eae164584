"""The one date-time format (portal/formats) and relative times (portal.lib.ago, the ``when`` template tags)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.template import Context, Template
from django.utils import formats, timezone

from portal.lib.ago import ago, span

NOW = datetime(2026, 12, 2, 17, 51, 4, tzinfo=UTC)


@pytest.mark.parametrize(
    ("delta", "words"),
    [
        (timedelta(seconds=3), "just now"),
        (timedelta(seconds=-3), "just now"),
        (timedelta(seconds=45), "45 s ago"),
        (timedelta(minutes=3, seconds=20), "3 min ago"),
        (timedelta(hours=5), "5 h ago"),
        (timedelta(hours=5, minutes=3), "5 h 3 min ago"),
        (timedelta(days=2, hours=4, minutes=9), "2 d 4 h ago"),
        (timedelta(days=3), "3 d ago"),
        (-timedelta(minutes=5), "in 5 min"),
    ],
)
def test_relative_times_read_at_a_glance(delta, words):
    assert ago(NOW - delta, NOW) == words


def test_span_ignores_the_sign():
    assert span(-125) == span(125) == "2 min"


def test_one_format_with_the_zone_in_django_and_in_the_tag(settings):
    settings.TIME_ZONE = "Europe/Athens"
    with timezone.override("Europe/Athens"):
        assert formats.date_format(timezone.localtime(NOW), "DATETIME_FORMAT") == "2026-12-02 19:51:04 EET"
        html = Template("{% load when %}{% when moment %}").render(Context({"moment": NOW}))
    assert html == '<time datetime="2026-12-02T17:51:04+00:00">2026-12-02 19:51:04 EET</time>'


def test_the_relative_form_keeps_the_absolute_time_beside_it():
    with timezone.override("UTC"):
        html = Template("{% load when %}{% when moment relative_first=True %}").render(
            Context({"moment": timezone.now() - timedelta(minutes=3, seconds=5)})
        )
    assert ">3 min ago</time>" in html
    assert " UTC)</small>" in html


def test_nothing_to_show_reads_as_a_dash():
    assert Template("{% load when %}{% when moment %}|{{ moment|ago }}").render(Context({"moment": None})) == "—|"
