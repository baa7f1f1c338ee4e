"""``reasonlab serve``: an OpenAI-compatible server over any backend, with reasoning strategies."""

from __future__ import annotations

import secrets
from typing import Optional

import typer

from reasonlab.cli.common import above, console, friendly_errors

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def serve_command(
    model: str = typer.Option(..., "--model", "-m", help="Embedded name, HF id, local dir or .gguf file."),
    backend: str = typer.Option("hf", help="Generation backend (hf, vllm, openai)."),
    host: str = typer.Option("127.0.0.1", help="Address to bind. Off loopback, requests need an API key."),
    port: int = typer.Option(8000, min=1, max=65535, help="Port to listen on."),
    served_name: Optional[str] = typer.Option(None, help="Model id clients send (default: --model)."),
    max_concurrency: int = typer.Option(16, min=1, help="Requests queued or running at once; more get 503."),
    timeout_s: float = typer.Option(600.0, min=0, callback=above(0), help="Per-request limit in seconds (queue wait included); 504 after."),
    max_tokens: int = typer.Option(4096, min=1, help="Cap on max_tokens a request may ask for."),
    max_n: int = typer.Option(16, min=1, help="Cap on n (choices per request)."),
    scorer: Optional[str] = typer.Option(None, help="Reward-model dir (`reasonlab train prm`) for best_of_n, "
                                         "weighted_vote, beam, dvts."),
    dtype: Optional[str] = typer.Option(None, help="Weights dtype for the hf backend (bf16, fp32...)."),
    api_key: Optional[str] = typer.Option(None, envvar="REASONLAB_API_KEY", show_default=False,
                                          help="Require 'Authorization: Bearer KEY' on every route. "
                                          "Default: none on loopback; a random key, printed, elsewhere."),
    no_auth: bool = typer.Option(False, "--no-auth", help="Serve a non-loopback address without a key."),
) -> None:
    """Serve MODEL at http://HOST:PORT/v1 (chat completions, models, health)."""
    import uvicorn

    from reasonlab.backends.factory import make_backend
    from reasonlab.serve import ServeConfig, create_app

    if not api_key and host not in LOOPBACK and not no_auth:
        api_key = secrets.token_urlsafe(24)
        console.print(f"API key for this server (or choose one with --api-key): {api_key}")
    with friendly_errors():
        cfg = ServeConfig(max_concurrency=max_concurrency, timeout_s=timeout_s, max_tokens=max_tokens,
                          max_n=max_n, default_max_tokens=min(512, max_tokens), api_key=api_key or None)
        options = {"dtype": dtype} if dtype else {}
        gen = make_backend(backend, model, **options)
        reward = None
        if scorer:
            from reasonlab.search.scorers import RewardModelScorer

            reward = RewardModelScorer.load(scorer)
    if host not in LOOPBACK and not cfg.api_key:
        console.print(f"[yellow]warning:[/yellow] binding {host} without an API key: anyone who can reach "
                      "it can use it")
    app = create_app(gen, served_name or model, cfg, scorer=reward)
    console.print(f"serving {served_name or model!r} ({backend}) at http://{host}:{port}/v1")
    uvicorn.run(app, host=host, port=port, log_level="info")


def register(app: typer.Typer, train_app: typer.Typer) -> None:
    app.command("serve")(serve_command)
