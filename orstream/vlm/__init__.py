"""The vision-language model's parts that run without training code: questions drawn from the
phantoms' ground truth, the scoring of an answer against them, the text tokenizer, and the
visual features the model reads (surgical frames through the segmenter's image encoder, slide
regions through the slide package's patch encoder)."""
