"""The visual tokens a vision-language package reads, from clips and slides."""
