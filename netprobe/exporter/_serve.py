"""Running the exporter from the command line: ``netprobe serve --config FILE``."""

from __future__ import annotations

import sys

from .._errors import InvalidOption

__all__ = ["MISSING_EXTRA", "run_serve"]

MISSING_EXTRA = (
    "netprobe serve needs the exporter extra: pip install 'netprobe-sdk[exporter]' "
    "(missing: {name})"
)


def run_serve(config_path: str, listen: str | None) -> None:
    """Load the configuration (one-line errors before listening), then serve until stopped.

    Raises:
        InvalidOption: the configuration is wrong, or the ``exporter`` extra is missing.
    """
    try:
        import uvicorn
        import yaml  # noqa: F401 - the configuration's parser, checked before anything else

        from .app import ExporterApp
        from .config import ExporterConfig, load_config
    except ModuleNotFoundError as exc:
        raise InvalidOption(MISSING_EXTRA.format(name=exc.name)) from None
    config = load_config(config_path)
    if listen is not None:
        config = ExporterConfig(
            modules=config.modules,
            allow=config.allow,
            listen=listen,
            max_concurrent=config.max_concurrent,
            source="--listen",
        )
    host, port = config.host, config.port
    print(
        f"netprobe serve: http://{config.listen}/probe?target=...&module=... "
        f"(modules: {', '.join(config.modules)}; {len(config.allow)} allow rules; "
        f"at most {config.max_concurrent} at once)",
        file=sys.stderr,
        flush=True,
    )
    server = uvicorn.Server(
        uvicorn.Config(
            ExporterApp(config),
            host=host,
            port=port,
            lifespan="off",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
    )
    server.run()
