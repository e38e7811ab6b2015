"""Functional token mixers, one sub-package per operator (see GUIDE.md section 1)."""
