"""One module per `proctor` subcommand: `add_parser(subparsers)` registers it with a `handler`."""
