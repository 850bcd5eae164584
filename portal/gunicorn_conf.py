"""gunicorn settings of the production HTTP server: ``gunicorn -c python:portal.gunicorn_conf portal.wsgi:application``.

- No proxy headers are believed by gunicorn: by default it would take ``X-Forwarded-Proto: https`` from 127.0.0.1
  as a secure request. Whom to believe is the portal's ``TRUSTED_PROXIES`` / ``SECURE_PROXY_SSL_HEADER`` alone.
- The ``Server`` header does not name the server software (gunicorn has no setting for it; its response class
  reads this module-level name when it builds each response).
gunicorn writes the application's header names as given (Django's are canonical: ``Content-Length``, …).
"""

import gunicorn.http.wsgi

# gunicorn's maximum: CRM.COM clients put every parameter of a GET in the query string. A longer request line gets
# gunicorn's own HTML 400 (it cannot know the dialect without the path); a reverse proxy in front answers first.
limit_request_line = 8190
forwarded_allow_ips = ""
secure_scheme_headers: dict[str, str] = {}
gunicorn.http.wsgi.SERVER = "portal"
