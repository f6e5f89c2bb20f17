"""TuneDesk engine: everything that is not a window. No Qt may be imported from here."""

__version__ = "0.1.0"
