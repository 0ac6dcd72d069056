"""Helpers of the browser tests (a module name unique in the test suite)."""


class PageWatch:
    """Collects uncaught page errors, console errors and requests that would leave the machine."""

    def __init__(self, page, allowed_prefixes):
        self.errors, self.console_errors, self.external = [], [], []
        self.allowed = tuple(allowed_prefixes)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)
        page.route("**/*", self._route)

    def _route(self, route):
        url = route.request.url
        if url.startswith(self.allowed) or url.startswith(("data:", "blob:", "about:")):
            route.continue_()
        else:
            self.external.append(url)
            route.abort()
