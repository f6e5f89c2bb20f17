"""TuneDesk desktop window (PySide6): a client of `engine`."""
