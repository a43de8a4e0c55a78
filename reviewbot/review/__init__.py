"""Review: run the checkers over a patch or file and report findings."""
