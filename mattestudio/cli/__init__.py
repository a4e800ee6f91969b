"""The `mattestudio` command line: matte, batch, eval, engines, models, sample; no subcommand opens the editor."""
