"""A small client for the control API of `netloom emulate --serve` (Python standard library only).

    api = Netloom("http://127.0.0.1:8080/")
    api.load({"nodes": {...}, "links": [...], "apps": [...]})   # a topology, as a dict (sent as JSON)
    api.pause(); api.step(duration="2s")
    api.set_link("wan", loss="5%", delay="40ms")
    api.link_down("wan"); api.link_up("wan")
    api.state()["links"], api.apps()

The API is described at /openapi.json. Errors come back as NetloomError with the server's message.
"""
import json
import urllib.error
import urllib.request


class NetloomError(Exception):
    def __init__(self, status, message):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class Netloom:
    def __init__(self, url, timeout=30):
        self.url = url.rstrip("/") + "/"
        self.timeout = timeout

    def _call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                return json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            try:
                message = json.loads(e.read())["error"]
            except (ValueError, KeyError):
                message = e.reason
            raise NetloomError(e.code, message) from None

    # reading
    def state(self): return self._call("GET", "api/state")
    def apps(self): return self._call("GET", "api/apps")
    def link(self, name): return self._call("GET", f"api/links/{name}")

    # building
    def load(self, topology): return self._call("PUT", "api/scenario", topology)

    # faults
    def set_link(self, name, **impairments): return self._call("PATCH", f"api/links/{name}", impairments)
    def link_down(self, name): return self._call("POST", f"api/links/{name}/down")
    def link_up(self, name): return self._call("POST", f"api/links/{name}/up")
    def partition(self, *groups): return self._call("POST", "api/partition", {"groups": [list(g) for g in groups]})
    def heal(self): return self._call("POST", "api/heal")
    def crash(self, node): return self._call("POST", f"api/nodes/{node}/crash")
    def restart(self, node): return self._call("POST", f"api/nodes/{node}/restart")

    # time
    def pause(self): return self._call("POST", "api/pause")
    def resume(self, for_=None): return self._call("POST", "api/resume", {"for": for_} if for_ else None)
    def step(self, events=None, duration=None):
        return self._call("POST", "api/step", {"duration": duration} if duration else {"events": events or 1})
