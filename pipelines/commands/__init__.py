"""One module per `odg` command (or command group member). Each defines `register(cli)`:
`cli.command(name, help)` or `cli.group(name, help).add_parser(...)`, and sets `func` on its parser.
Modules are discovered by `odg.pipelines.cli`; adding a command is adding a module here."""
