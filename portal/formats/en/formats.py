"""One date-time format across the admin, the pages and the exports: ISO-like, 24-hour, with the time zone.

Django's own English formats ("Dec. 2, 2026, 5:51 p.m.") would win over settings.DATETIME_FORMAT; a format module
(``FORMAT_MODULE_PATH``) is how a project replaces them. Keep in step with ``portal.kernel.templatetags.when``."""

DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i T"
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i:s"
