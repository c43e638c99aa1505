"""``orstream tokenize`` and ``orstream detokenize``: images and videos to a tokenizer package's
discrete tokens and back."""
