"""`evalhouse serve`: the run view, run search, alerts and the ops overview (FastAPI + Jinja2).

`evals.web.app.create_app(config, token)` assembles the app from the routers; the CLI command is in
evals/cli/serve.py. Templates and the stylesheet ship inside this package (no CDN, no build step).
"""
