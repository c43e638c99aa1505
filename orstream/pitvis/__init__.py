"""PitVis: the data set layout, its CSV files, the challenge's metrics and ``orstream eval
pitvis``."""
