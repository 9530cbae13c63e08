"""The desktop window of treering-forensics (PySide6). A thin layer over `engine`: every analysis runs in
the engine, in a worker thread; this package only shows evidence, progress and results, and turns
arrays into pictures (log-magnitude spectra, ring overlays, difference maps)."""
