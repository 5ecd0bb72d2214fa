"""The HTTP server of ``serve``: one process, or ``--workers N`` processes on one port.

With workers, uvicorn's supervisor binds the port once and starts N processes that share
it, restarting any that dies. Each builds the service from the same settings as the
parent (the same config file and command-line values; the environment is inherited), as a
replica of its own: its replica id gets its process id appended, and it has its own
internal listener. The workers share the delivery slots through the slot group like
replicas on several hosts do, forwarding each other the messages of their slots (README,
Scaling).
"""

from __future__ import annotations

import gc
import json
import os
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from uvicorn.supervisors import Multiprocess

from consumer.http.server import ServerConfig, server_config
from consumer.settings import Settings, load_settings

__all__ = [
    "ServerConfig",
    "serve_one",
    "serve_workers",
    "server_config",
    "worker_app",
    "worker_settings",
]

# How a worker process finds the parent's settings: the config file and the command's own
# values, as JSON. Not an IVMTR_ variable, so that no settings source ever reads it.
_WORKER_SPEC = "_IVMTR_SERVE_WORKER"


def _freeze_heap() -> None:
    # Modules, schemas and the app (~68,000 objects) live as long as the process. Frozen,
    # a full collection no longer walks them: under 100 messages/s one paused the event
    # loop for 47 ms before the freeze and 5 ms after (a gc.callbacks probe).
    gc.collect()
    gc.freeze()


def serve_one(app: Starlette, settings: Settings) -> None:
    """Serve ``app`` in this process until a signal stops it."""
    config = server_config(app, settings)
    config.load()
    _freeze_heap()
    uvicorn.Server(config).run()


def serve_workers(settings: Settings, config_file: Path | None, overrides: dict[str, Any]) -> None:
    """Serve ``settings.workers`` processes on one port until a signal stops them.

    ``config_file`` and ``overrides`` are where ``settings`` came from besides the
    environment: each worker builds its settings from them again.
    """
    os.environ[_WORKER_SPEC] = json.dumps(
        {"config": str(config_file) if config_file else None, "overrides": overrides}
    )
    config = server_config(
        "consumer.cli.workers:worker_app", settings, factory=True, workers=settings.workers
    )
    socket = config.bind_socket()
    Multiprocess(config, sockets=[socket]).run()


def worker_settings() -> Settings:
    """The settings of this worker process: the parent's, as a replica of its own."""
    spec = json.loads(os.environ[_WORKER_SPEC])
    settings = load_settings(Path(spec["config"]) if spec["config"] else None, **spec["overrides"])
    return settings.model_copy(update={"replica_id": f"{settings.replica_id}-{os.getpid()}"})


def worker_app() -> Starlette:
    """The application of one worker process; uvicorn calls it in each."""
    from consumer.http.app import create_app
    from consumer.logging import configure_logging

    settings = worker_settings()
    configure_logging(settings.log_level, settings.log_format)
    app = create_app(settings)
    _freeze_heap()
    return app
