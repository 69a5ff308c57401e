"""The web fetch's half that runs where the tools run: in the Docker sandbox, as the
sandbox's user, or on the host as a command would, with a command's environment.

So a page is fetched with exactly the network the session's commands have (none in
a sandbox without networking) and with nothing of the engine's: no credential, proxy
or address it alone can reach. It runs as
``python3 -I -S -c SOURCE URL LIMIT SECONDS``:

* only ``http`` and ``https`` URLs, and redirects (at most ``MAX_REDIRECTS``) only to
  them: never ``file``, ``ftp`` or ``data``, which would read the sandbox's own files;
* one GET, with the proxy the environment names, if any;
* at most LIMIT bytes of body, and at most SECONDS for all of it: the alarm's default
  action ends the process whatever it waits on.

It writes one line of JSON (``url`` after redirects, ``status``, ``content_type``,
``charset``, ``truncated``) and then the body on stdout. An HTTP error status is an
answer like any other. No answer (a name that does not resolve, a refused connection,
a bad certificate) exits with status ``REFUSED`` and ``unreachable REASON`` on stderr.
Only the standard library is used: this runs on the sandbox's Python.
"""

from __future__ import annotations

import json
import signal
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import IO, Any

REFUSED = 3
MAX_REDIRECTS = 5
SCHEMES = ("http", "https")
HEADERS = {
    "User-Agent": "agentjournal-web-fetch/1",
    "Accept": "text/html, text/plain, text/markdown, application/json, application/xml;q=0.9, */*;q=0.5",
}


class Refused(Exception):
    """Ends the fetch: a reason word for the engine, then a detail."""


class WebRedirects(urllib.request.HTTPRedirectHandler):
    """Follows at most MAX_REDIRECTS redirects, and only to http and https."""

    max_redirections = MAX_REDIRECTS

    def http_error_302(self, req: Any, fp: Any, code: int, msg: str, headers: Any) -> Any:
        target = urllib.parse.urljoin(req.full_url, headers.get("location") or headers.get("uri") or "")
        scheme = urllib.parse.urlsplit(target).scheme
        if scheme not in SCHEMES:
            raise Refused("unreachable", f"redirected to a {scheme!r} URL")
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


def opener() -> urllib.request.OpenerDirector:
    """An opener with http, https, redirects and the environment's proxy, and nothing else."""
    director = urllib.request.OpenerDirector()
    handlers = (
        urllib.request.ProxyHandler(),
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(),
        WebRedirects(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
    )
    for handler in handlers:
        director.add_handler(handler)
    return director


def answer(response: Any, url: str, status: int, limit: int, out: IO[bytes]) -> None:
    body = response.read(limit + 1)
    about = {
        "url": url,
        "status": status,
        "content_type": response.headers.get_content_type(),
        "charset": response.headers.get_content_charset() or "",
        "truncated": len(body) > limit,
    }
    out.write(json.dumps(about).encode() + b"\n" + body[:limit])


def fetch(url: str, limit: int, seconds: int, out: IO[bytes]) -> None:
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in SCHEMES:
        raise Refused("unreachable", f"only http and https URLs can be fetched, not {scheme or 'this'!r}")
    request = urllib.request.Request(url, headers=HEADERS)
    try:
        with opener().open(request, timeout=seconds) as response:
            answer(response, response.geturl(), response.status, limit, out)
    except urllib.error.HTTPError as error:
        with error:
            answer(error, error.geturl() or url, error.code, limit, out)
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise Refused("unreachable", reason) from None


def main(argv: list[str]) -> int:
    url, limit, seconds = argv[1], int(argv[2]), int(argv[3])
    signal.alarm(seconds)
    try:
        fetch(url, limit, seconds, sys.stdout.buffer)
        return 0
    except Refused as problem:
        sys.stderr.write(" ".join(map(str, problem.args)).replace("\n", " ") + "\n")
        return REFUSED


if __name__ == "__main__":
    sys.exit(main(sys.argv))
