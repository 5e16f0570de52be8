"""One module (or package) per domain; each contributes its own `defs`."""
