"""The `qaemb-fast` command line (entry point `qaemb_cli.main:main`), on top of every other package."""
