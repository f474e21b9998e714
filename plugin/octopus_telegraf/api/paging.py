"""Pages: the consumption stream (rows as each page's body arrives, a page that fails part-way asked again
from just after the last row given out) and `results` pages, each following same-origin `next`
links only, each page once, a loop refused. A mixin of the client: it pages, the client exchanges."""

from urllib.parse import quote, urlencode, urljoin

from octopus_telegraf.api.faults import MAX_RETRIES, ApiError, Retryable, origin, path_of
from octopus_telegraf.base import log
from octopus_telegraf.base.timeutil import NS_PER_SECOND, iso_to_ns, ns_to_utc_z

MAX_PAGES = 1000  # a year of half-hours is one page at the largest size; this many means a `next` loop


class Paging:
    """Needs of its host: get_json, _exchange, _open, _body, _after_failure, same_origin, api_url, errors_seen."""

    def consumption_rows(self, meter, period_from_ns: int, page_size: int):
        """A meter's consumption rows as its pages arrive, oldest first, a chunk at a time: each row as
        JSON decodes it (a dict for a row of the API's shape). Same-origin `next` links are followed,
        each once. A page that fails part-way is asked again (at most
        MAX_RETRIES times) from just after the last row given out: no row twice, none skipped."""
        from octopus_telegraf.api.pagestream import PageError, PageShapeError, PageStream, row_start_text

        def url_from(moment_ns: int) -> str:
            return self.consumption_url(meter, {"period_from": ns_to_utc_z(moment_ns), "page_size": page_size,
                                                "order_by": "period"})

        url, seen, attempt, last_start = url_from(period_from_ns), set(), 0, None
        while url:
            visit(url, seen)
            try:
                page = PageStream()
                with self._exchange(url) as exchange:
                    response = self._open(url, exchange)
                    with response:
                        for chunk in self._body(response, exchange):
                            rows = page.feed(chunk)
                            if rows:
                                last_start = row_start_text(rows[-1])
                                yield rows
                        page.close()
            except PageShapeError as exc:
                self.errors_seen += 1
                raise ApiError(f"{path_of(url).split('?')[0]}: {exc}", malformed=True) from None
            except ApiError:
                self.errors_seen += 1
                raise
            except (Retryable, PageError) as fault:
                if isinstance(fault, PageError):
                    fault = Retryable(f"HTTP 200 but {fault}", 200)
                self._after_failure(fault, attempt, MAX_RETRIES)
                attempt += 1
                seen.discard(url)
                if isinstance(last_start, str):  # resume after what was given out
                    try:
                        url = url_from(iso_to_ns(last_start) + NS_PER_SECOND)
                    except (ValueError, OverflowError):
                        pass
                continue
            url = self._following(url, page.next)

    def pages(self, url: str, *, authenticated: bool = True, max_pages: int = MAX_PAGES):
        """Yield each page's `results` list, following same-origin `next` links only, each at most once,
        `max_pages` at most."""
        seen = set()
        while url:
            visit(url, seen, max_pages)
            page = self.get_json(url, authenticated=authenticated)
            if not isinstance(page, dict) or not isinstance(page.get("results"), list):
                raise ApiError(f"{path_of(url).split('?')[0]}: response has no `results` list", malformed=True)
            yield page["results"]
            url = self._following(url, page.get("next"))

    def _following(self, url: str, following) -> str | None:
        """The page after `url`: its `next` link, if there is one and it stays on the configured origin."""
        if following is not None and not isinstance(following, str):
            raise ApiError("response has a `next` that is not a URL", malformed=True)
        url = urljoin(url, following) if following else None  # the API's links are absolute; be lenient
        if url and not self.same_origin(url):
            log.warn(f"not following a `next` link to another origin ({origin(url)[1]})")
            return None
        return url

    def consumption_url(self, meter, query: dict) -> str:
        kind = "electricity-meter-points" if meter.fuel == "electricity" else "gas-meter-points"
        return (f"{self.api_url}/v1/{kind}/{quote(meter.point, safe='')}/meters/"
                f"{quote(meter.serial, safe='')}/consumption/?{urlencode(query)}")

    def has_consumption(self, meter) -> bool:
        """Does this meter have any data at all? (An old serial after a swap has none.) Raises ApiError."""
        page = self.get_json(self.consumption_url(meter, {"page_size": 1}))
        return bool(isinstance(page, dict) and page.get("results"))


def visit(url: str, seen: set, max_pages: int = MAX_PAGES) -> None:
    """Each page once: a `next` link back to a page already read, or too many pages, is a loop."""
    if url in seen or len(seen) >= max_pages:
        raise ApiError(f"{path_of(url).split('?')[0]}: `next` links go round in a loop "
                       f"({len(seen)} pages); stopped following them", malformed=True)
    seen.add(url)
