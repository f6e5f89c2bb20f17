"""Bodies of the `tunedesk` subcommands that outgrew engine/cli.py: the parser and the
dispatch stay there, the work a command does (a few calls into the engine and the text
it prints) lives here, one module per group of commands."""
