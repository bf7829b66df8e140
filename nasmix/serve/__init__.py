"""`nasmix serve`: a live, read-only web dashboard of a study store (docs/serve.md).

- progress.py: a cell's phase, progress, elapsed time and ETA (pure);
- views.py, cellview.py: the pages' data as JSON values (pure, over the report's metrics);
- live.py: the thread that reads the store and publishes snapshots;
- pages.py, static/: the HTML shells, scripts and style;
- app.py: the Starlette application and its JSON API (needs the `serve` extra);
- launch.py: checks, binding and uvicorn.
"""
