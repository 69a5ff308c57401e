"""A fetched web page as text a model can read.

Text types (``text/*``, JSON, XML, JavaScript) are decoded with the page's character
set (UTF-8 when it names none or an unknown one). HTML is reduced to its text: no
scripts, styles or markup, one line per block, and a link's address after its text.
Other types (images, PDFs, archives) have no text here: :func:`page_text` returns None.
"""

from __future__ import annotations

import codecs
import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from agentjournal.application.ports import WebPage

HTML_TYPES = ("text/html", "application/xhtml+xml")
TEXT_TYPES = ("application/json", "application/xml", "application/javascript", "application/x-javascript")
HIDDEN = {"script", "style", "noscript", "template", "svg", "iframe", "object"}
BLOCKS = {
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption", "figure",
    "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol",
    "p", "pre", "section", "table", "tr", "ul", "title",
}  # fmt: skip


def page_text(page: WebPage) -> str | None:
    """The page's text, or None when its type has none."""
    kind = page.content_type.lower()
    textual = kind.startswith("text/") or kind in TEXT_TYPES or kind.endswith(("+json", "+xml"))
    if not textual:
        return None
    text = page.body.decode(_codec(page.charset), errors="replace")
    return html_text(text, page.url) if kind in HTML_TYPES else text


def html_text(html: str, base_url: str) -> str:
    """The readable text of an HTML document; relative links are made absolute against
    ``base_url``."""
    reader = _TextReader(base_url)
    reader.feed(html)
    reader.close()
    return reader.text()


def _codec(charset: str) -> str:
    try:
        return codecs.lookup(charset).name if charset else "utf-8"
    except LookupError:
        return "utf-8"


class _TextReader(HTMLParser):
    def __init__(self, base_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base_url = base_url
        self.parts: list[str] = []
        self.hidden = 0
        self.links: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in HIDDEN:
            self.hidden += 1
        if tag in BLOCKS:
            self.parts.append("\n")
        if tag == "a":
            self.links.append(self._address(dict(attrs).get("href")))

    def handle_endtag(self, tag: str) -> None:
        if tag in HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        if tag in BLOCKS:
            self.parts.append("\n")
        if tag == "a" and self.links:
            address = self.links.pop()
            if address and not self.hidden:
                self.parts.append(f" ({address})")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)

    def _address(self, href: str | None) -> str | None:
        if not href or href.startswith("#"):
            return None
        address = urljoin(self.base_url, href)
        return address if urlsplit(address).scheme in ("http", "https") else None

    def text(self) -> str:
        lines = (re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in "".join(self.parts).split("\n"))
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
