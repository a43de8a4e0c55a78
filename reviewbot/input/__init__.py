"""Input: patches and series from files, mbox, stdin, lore and local git."""
