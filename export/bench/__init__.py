"""``orstream export bench``: every backend this host can run, timed on one package."""
