"""Data files of the judge calibration sets (a package so that installs carry them)."""
