"""Answering questions with a vision-language package: language runtimes, batched decoding,
the answer engine, and the Hugging Face backend."""
