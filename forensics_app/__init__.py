"""Front ends of the tool: the PySide6 desktop window and the headless CLI. Thin: every computation is an
`engine` call."""
