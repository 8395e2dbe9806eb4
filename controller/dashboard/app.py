"""The dashboard's web app (FastAPI + Jinja2 pages + Plotly), read-only over one store.

FastAPI because it is a well-kept ASGI framework already on the design card; pages are rendered on the
server and filled by one small script that polls the JSON API every 2 s, and plots are Plotly's, whose script
ships inside the ``plotly`` package and is served from it: nothing comes from a CDN. The store is opened
read-only, and every route is a GET. With a token, every request needs it (``Authorization: Bearer``, or
``?token=`` once, which sets a cookie for the browser).
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.exc import SQLAlchemyError

from hwnas.controller.dashboard import searches, views
from hwnas.controller.store import Store, StoreOpenError

HERE = Path(__file__).parent
COOKIE = "hwnas_dashboard_token"
PAGES = {"fleet": "Fleet", "campaigns": "Campaigns", "dataset": "Dataset", "searches": "Searches"}
STORE_ERRORS = (SQLAlchemyError, StoreOpenError, OSError, ValueError)


def plotly_script() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def create_app(store_target: str | Path, shown_as: str, token: str | None = None,
               runs: Sequence[Path] = ()) -> FastAPI:
    """The app over the store at ``store_target`` (a path or a SQLAlchemy URL), named ``shown_as`` in pages
    (a URL with its password hidden); ``runs``: folders of search runs for the Searches page."""
    app = FastAPI(title="hwnas dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape())
    state: dict[str, Any] = {"store": None}

    def store() -> Store:
        if state["store"] is None:
            state["store"] = Store(store_target, read_only=True)
        return state["store"]

    def page(template: str, status: int = 200, current: str = "", **context: Any) -> HTMLResponse:
        html = templates.get_template(f"{template}.html").render(pages=PAGES, current=current, store=shown_as,
                                                                 **context)
        return HTMLResponse(html, status_code=status)

    def trouble(exc: Exception) -> HTMLResponse:
        return page("error", 503, title="The store cannot be read",
                    detail=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")

    @app.middleware("http")
    async def require_token(request: Request, call_next):
        if token is None:
            return await call_next(request)
        given = request.query_params.get("token") or request.cookies.get(COOKIE) or ""
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            given = header[7:].strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            return page("error", 401, title="Wrong or missing token",
                        detail="Open the dashboard with ?token=... or send Authorization: Bearer ...")
        response = await call_next(request)
        if request.query_params.get("token"):
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        return response

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.get("/static-vendor/plotly.min.js")
    def plotly_js() -> Response:
        return Response(plotly_script().read_bytes(), media_type="application/javascript")

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/")
    def home() -> RedirectResponse:
        return RedirectResponse("/fleet")

    @app.get("/fleet", response_class=HTMLResponse)
    def fleet_page() -> HTMLResponse:
        return page("live", current="fleet", title="Fleet", api="/api/fleet")

    @app.get("/campaigns", response_class=HTMLResponse)
    def campaigns_page() -> HTMLResponse:
        return page("live", current="campaigns", title="Campaigns", api="/api/campaigns")

    @app.get("/dataset", response_class=HTMLResponse)
    def dataset_page(request: Request) -> HTMLResponse:
        query = str(request.url.query)
        return page("dataset", current="dataset", title="Dataset", api="/api/dataset" + (f"?{query}" if query else ""))

    @app.get("/arch/{arch_id}", response_class=HTMLResponse)
    def arch_page(arch_id: str) -> HTMLResponse:
        try:
            arch = views.architecture(store(), arch_id)
        except KeyError:
            return page("error", 404, title="No such architecture",
                        detail=f"the store holds no architecture {arch_id!r}")
        except STORE_ERRORS as exc:
            return trouble(exc)
        return page("arch", title=f"Architecture {arch_id[:12]}", arch=arch)

    @app.get("/arch/{arch_id}/model.onnx")
    def arch_onnx(arch_id: str) -> Response:
        from hwnas.controller.graph import ComputationGraph
        from hwnas.controller.graph.onnx_export import to_onnx_bytes

        try:
            record = store().architecture(arch_id)
        except KeyError:
            return JSONResponse({"error": f"no architecture {arch_id!r}"}, status_code=404)
        except STORE_ERRORS as exc:
            return JSONResponse({"error": str(exc)}, status_code=503)
        return Response(to_onnx_bytes(ComputationGraph.from_json(record.cg_json)), media_type="application/onnx",
                        headers={"content-disposition": f'attachment; filename="{arch_id}.onnx"'})

    @app.get("/searches", response_class=HTMLResponse)
    def searches_page() -> HTMLResponse:
        return page("plots", current="searches", title="Searches", api="/api/searches", kind="searches",
                    note="" if runs else "No run folders were given: start the dashboard with --runs DIR.")

    @app.get("/searches/{name:path}/front/{file}")
    def autogo_front_file(name: str, file: str) -> Response:
        found = searches.run_file(runs, name, file)
        if found is None:
            return page("error", 404, current="searches", title="No such file",
                        detail=f"no AutoGO run {name!r} with a front file {file!r}")
        path, media_type = found
        return Response(path.read_bytes(), media_type=media_type)

    @app.get("/searches/{name:path}", response_class=HTMLResponse)
    def search_run_page(name: str) -> HTMLResponse:
        folder = searches.run_folders(runs).get(name)
        if folder is None:
            return page("error", 404, current="searches", title="No such run",
                        detail=f"no search run {name!r} under {', '.join(map(str, runs)) or 'any --runs folder'}")
        if searches.is_autogo_run(folder):
            return page("plots", current="searches", title=f"AutoGO run {name}", api=f"/api/autogo-run/{name}",
                        kind="autogo-run", note="")
        return page("plots", current="searches", title=f"Search run {name}", api=f"/api/search-run/{name}",
                    kind="search-run", note="")

    @app.get("/api/searches")
    def searches_api() -> JSONResponse:
        return JSONResponse(searches.searches(runs))

    def run_api(read, kind: str, name: str) -> JSONResponse:
        try:
            return JSONResponse(read(runs, name))
        except KeyError:
            return JSONResponse({"error": f"no {kind} {name!r}"}, status_code=404)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=503)

    @app.get("/api/search-run/{name:path}")
    def search_run_api(name: str) -> JSONResponse:
        return run_api(searches.search_run, "search run", name)

    @app.get("/api/autogo-run/{name:path}")
    def autogo_run_api(name: str) -> JSONResponse:
        return run_api(searches.autogo_run, "AutoGO run", name)

    def api(read) -> JSONResponse:
        try:
            return JSONResponse(read(store()))
        except STORE_ERRORS as exc:
            return JSONResponse({"error": f"the store cannot be read: {exc}"}, status_code=503)

    @app.get("/api/fleet")
    def fleet_api() -> JSONResponse:
        return api(views.fleet)

    @app.get("/api/campaigns")
    def campaigns_api() -> JSONResponse:
        return api(views.campaigns)

    @app.get("/api/dataset")
    def dataset_api(space: str = "", protocol: str = "", backend: str = "") -> JSONResponse:
        return api(lambda s: views.dataset(s, space, protocol, backend))

    return app
