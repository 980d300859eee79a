"""Precision and recall of the hit decision on labelled prompt pairs (`deja eval`)."""
